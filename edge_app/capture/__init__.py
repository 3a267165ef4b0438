"""Frame and audio sources (cameras, streams, files, scenarios, microphones) and the newest-frame grabber."""

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
from edge_app.capture.config import (
    AudioSourceConfig,
    FrameSourceConfig,
    OpenCVSourceConfig,
    PicameraSourceConfig,
    PyAudioConfig,
    ScenarioSourceConfig,
    WavAudioConfig,
)
from edge_app.capture.grabber import LatestFrameGrabber
from edge_app.capture.scenario import ScenarioSource, load_truth, scenario_audio
from edge_app.capture.wav import read_wav

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
