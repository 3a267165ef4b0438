"""Frame and audio sources (cameras, streams, files, microphones) and the newest-frame grabber.

The settings (:mod:`edge_app.capture.config`) load eagerly; the sources themselves on first use, so that
validating a config does not load OpenCV. A rendered scenario played as a camera is a development tool
(``tools/scenarios/player.py``), reached through :func:`build_source` only.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from edge_app.capture.config import (
    AudioSourceConfig,
    FrameSourceConfig,
    OpenCVSourceConfig,
    PicameraSourceConfig,
    PyAudioConfig,
    ScenarioSourceConfig,
    WavAudioConfig,
)

if TYPE_CHECKING:
    from edge_app.capture.base import (
        AudioChunk,
        AudioSource,
        Frame,
        FrameSource,
        SourceError,
        build_audio_source,
        build_source,
        register_audio_source,
        register_source,
    )
    from edge_app.capture.grabber import LatestFrameGrabber
    from edge_app.capture.wav import read_wav

_LAZY = {
    "edge_app.capture.base": ("AudioChunk", "AudioSource", "Frame", "FrameSource", "SourceError",
                              "build_audio_source", "build_source", "register_audio_source", "register_source"),
    "edge_app.capture.grabber": ("LatestFrameGrabber",),
    "edge_app.capture.wav": ("read_wav",),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)


__all__ = [
    "AudioChunk",
    "AudioSource",
    "AudioSourceConfig",
    "Frame",
    "FrameSource",
    "FrameSourceConfig",
    "LatestFrameGrabber",
    "OpenCVSourceConfig",
    "PicameraSourceConfig",
    "PyAudioConfig",
    "ScenarioSourceConfig",
    "SourceError",
    "WavAudioConfig",
    "build_audio_source",
    "build_source",
    "read_wav",
    "register_audio_source",
    "register_source",
]
