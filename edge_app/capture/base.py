"""What every frame and audio source is: the Frame/AudioChunk records, the two interfaces, a registry by ``type``.

A source is built from its config (``build_source(config)``), opened, read until ``None`` (end of stream)
and closed. Live sources (cameras, network streams, microphones) stamp items with ``time.monotonic()``;
files and scenarios stamp them with media time, seconds from the start of the file.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np
from pydantic import BaseModel, TypeAdapter

from edge_app.capture.config import AudioSourceConfig, FrameSourceConfig

_BUILTIN_MODULES = ("edge_app.capture.opencv_src", "edge_app.capture.picam", "edge_app.capture.wav",
                    "edge_app.capture.pyaudio_src")
# Simulation stays out of the unit's package: the scenario player lives with the scenario tools and is
# reached only through this registry, when a config asks for it.
_TOOL_MODULES = {"scenario": "tools.scenarios.player"}


class SourceError(RuntimeError):
    """A source could not be opened or stopped delivering; the message names the source and what went wrong."""


@dataclass(frozen=True, eq=False)
class Frame:
    """One camera frame."""

    image: np.ndarray  # RGB uint8, (H, W, 3)
    t: float  # seconds: media time for files/scenarios, time.monotonic() for live cameras
    index: int  # frame number from the source, 0 first; gaps mean frames the source skipped


@dataclass(frozen=True, eq=False)
class AudioChunk:
    """A run of mono audio samples."""

    samples: np.ndarray  # float32 mono in -1..1
    rate: int  # samples per second
    t: float  # start time in seconds, same clocks as Frame.t

    @property
    def duration(self) -> float:
        """Seconds of audio in the chunk."""
        return len(self.samples) / self.rate


class FrameSource(ABC):
    """A camera, stream, file or scenario delivering RGB frames."""

    type: ClassVar[str]

    @abstractmethod
    def open(self) -> None:
        """Start delivering frames; raises SourceError naming the source when it cannot."""

    @abstractmethod
    def read(self) -> Frame | None:
        """Block until the next frame; None at the end of the stream; SourceError when the source fails."""

    @abstractmethod
    def close(self) -> None:
        """Release the device or file; safe to call twice or without open()."""

    @property
    @abstractmethod
    def live(self) -> bool:
        """True for cameras and network streams (wall-clock time), False for files and scenarios."""

    @property
    def realtime(self) -> bool:
        """True when frames arrive at the pace of the wall clock, so a slow reader should drop stale ones."""
        return self.live

    @property
    def fps(self) -> float | None:
        """Nominal frame rate, when the source knows it."""
        return None

    def __enter__(self) -> FrameSource:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AudioSource(ABC):
    """A microphone or WAV file delivering mono float chunks."""

    type: ClassVar[str]

    @abstractmethod
    def open(self) -> None:
        """Start delivering audio; raises SourceError naming the source when it cannot."""

    @abstractmethod
    def read(self) -> AudioChunk | None:
        """Block until the next chunk; None at the end of the stream."""

    @abstractmethod
    def close(self) -> None:
        """Release the device or file; safe to call twice or without open()."""

    @property
    @abstractmethod
    def live(self) -> bool:
        """True for microphones, False for files."""

    @property
    def rate(self) -> int | None:
        """Sample rate once open."""
        return None

    def __enter__(self) -> AudioSource:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


FrameSourceType = TypeVar("FrameSourceType", bound=type[FrameSource])
AudioSourceType = TypeVar("AudioSourceType", bound=type[AudioSource])
_FRAME_SOURCES: dict[str, Callable[[Any], FrameSource]] = {}
_AUDIO_SOURCES: dict[str, Callable[[Any], AudioSource]] = {}
_frame_config = TypeAdapter(FrameSourceConfig)
_audio_config = TypeAdapter(AudioSourceConfig)


def register_source(cls: FrameSourceType) -> FrameSourceType:
    """Class decorator: ``build_source`` builds ``cls(config)`` for configs whose ``type`` is ``cls.type``."""
    _FRAME_SOURCES[cls.type] = cls
    return cls


def register_audio_source(cls: AudioSourceType) -> AudioSourceType:
    """Class decorator: ``build_audio_source`` builds ``cls(config)`` for configs of type ``cls.type``."""
    _AUDIO_SOURCES[cls.type] = cls
    return cls


def _load_builtin_sources(kind: object = None) -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
    if isinstance(kind, str) and kind in _TOOL_MODULES:
        try:
            importlib.import_module(_TOOL_MODULES[kind])
        except ModuleNotFoundError as exc:
            raise SourceError(f"the {kind!r} source is a development tool ({_TOOL_MODULES[kind]}), not part of the "
                              f"unit's package; run from the source tree to use it ({exc})") from None


def build_source(config: FrameSourceConfig | BaseModel | Mapping[str, Any]) -> FrameSource:
    """The frame source a config describes (a config model, or a mapping validated as one)."""
    if isinstance(config, Mapping):
        config = _frame_config.validate_python(config)
    kind = getattr(config, "type", None)
    _load_builtin_sources(kind)
    if kind not in _FRAME_SOURCES:
        raise SourceError(f"no frame source of type {kind!r}; known types: {', '.join(sorted(_FRAME_SOURCES))}")
    return _FRAME_SOURCES[kind](config)


def build_audio_source(config: AudioSourceConfig | BaseModel | Mapping[str, Any]) -> AudioSource:
    """The audio source a config describes (a config model, or a mapping validated as one)."""
    if isinstance(config, Mapping):
        config = _audio_config.validate_python(config)
    kind = getattr(config, "type", None)
    _load_builtin_sources(kind)
    if kind not in _AUDIO_SOURCES:
        raise SourceError(f"no audio source of type {kind!r}; known types: {', '.join(sorted(_AUDIO_SOURCES))}")
    return _AUDIO_SOURCES[kind](config)
