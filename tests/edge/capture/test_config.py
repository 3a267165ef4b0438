"""Source configs: discriminated by ``type``, extra fields refused, errors naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from edge_app.capture import (
    AudioSourceConfig,
    FrameSourceConfig,
    OpenCVSourceConfig,
    PyAudioConfig,
    ScenarioSourceConfig,
    WavAudioConfig,
)

frames = TypeAdapter(FrameSourceConfig)
audio = TypeAdapter(AudioSourceConfig)


@pytest.mark.parametrize("data, cls", [
    ({"type": "opencv", "uri": "rtsp://cam/live"}, OpenCVSourceConfig),
    ({"type": "scenario", "path": "build/scenarios/phone", "realtime": True}, ScenarioSourceConfig),
])
def test_frame_configs_pick_their_class(data: dict[str, Any], cls: type) -> None:
    assert type(frames.validate_python(data)) is cls


@pytest.mark.parametrize("text, uri", [("0", 0), (" 2 ", 2), ("²", "²"), ("٣", "٣")])
def test_only_ascii_digits_are_a_camera_index(text: str, uri: int | str) -> None:
    """"²".isdigit() is true, and int("²") fails: other digits are a file name, not an index."""
    config = frames.validate_python({"type": "opencv", "uri": text})
    assert isinstance(config, OpenCVSourceConfig) and config.uri == uri


def test_audio_defaults() -> None:
    wav = audio.validate_python({"type": "wav", "path": "a.wav"})
    assert isinstance(wav, WavAudioConfig) and wav.chunk_ms == 30 and not wav.realtime
    mic = audio.validate_python({"type": "pyaudio"})
    assert isinstance(mic, PyAudioConfig) and mic.rate == 16000 and mic.device_index is None


@pytest.mark.parametrize("data, field", [
    ({"type": "opencv"}, r"opencv\.uri"),
    ({"type": "opencv", "uri": 0, "fsp": 10}, r"opencv\.fsp"),
    ({"type": "opencv", "uri": -1}, r"a camera index must be 0 or more"),
    ({"type": "picamera2", "fps": 0}, r"picamera2\.fps"),
    ({"type": "scenario"}, r"scenario\.path"),
    ({"type": "webcam", "uri": 0}, r"does not match any of the expected tags"),
])
def test_bad_frame_configs_name_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        frames.validate_python(data)


@pytest.mark.parametrize("data, field", [
    ({"type": "wav", "path": "a.wav", "chunk_ms": 1}, r"wav\.chunk_ms"),
    ({"type": "pyaudio", "rate": 1000}, r"pyaudio\.rate"),
    ({"type": "pyaudio", "device": 2}, r"pyaudio\.device"),
])
def test_bad_audio_configs_name_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        audio.validate_python(data)


def test_every_field_is_described() -> None:
    for cls in (OpenCVSourceConfig, ScenarioSourceConfig, WavAudioConfig, PyAudioConfig):
        assert all(info.description for info in cls.model_fields.values()), cls.__name__
