"""Frame and audio sources (cameras, streams, files, scenarios, microphones) and the newest-frame grabber.

The settings (:mod:`edge_app.capture.config`) load eagerly; the sources themselves on first use, so that
validating a config does not load OpenCV.
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
    from edge_app.capture.scenario import ScenarioSource, load_truth, scenario_audio
    from edge_app.capture.wav import read_wav

_LAZY = {
    "edge_app.capture.base": ("AudioChunk", "AudioSource", "Frame", "FrameSource", "SourceError",
                              "build_audio_source", "build_source", "register_audio_source", "register_source"),
    "edge_app.capture.grabber": ("LatestFrameGrabber",),
    "edge_app.capture.scenario": ("ScenarioSource", "load_truth", "scenario_audio"),
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
    "ScenarioSource",
    "ScenarioSourceConfig",
    "SourceError",
    "WavAudioConfig",
    "build_audio_source",
    "build_source",
    "load_truth",
    "read_wav",
    "register_audio_source",
    "register_source",
    "scenario_audio",
]
