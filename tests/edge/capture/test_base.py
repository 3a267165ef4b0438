"""Building sources from configs: the discriminated unions, the registry and its errors."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict, Field

from edge_app.capture import (
    AudioChunk,
    Frame,
    FrameSource,
    SourceError,
    base,
    build_audio_source,
    build_source,
    register_source,
)
from edge_app.capture.opencv_src import OpenCVSource
from edge_app.capture.picam import PicameraSource
from edge_app.capture.pyaudio_src import PyAudioSource
from edge_app.capture.wav import WavAudioSource
from tools.scenarios.player import ScenarioSource


@pytest.mark.parametrize("config, cls", [
    ({"type": "opencv", "uri": 0}, OpenCVSource),
    ({"type": "picamera2"}, PicameraSource),
    ({"type": "scenario", "path": "scenarios/x"}, ScenarioSource),
])
def test_build_source_by_type(config: dict, cls: type) -> None:
    assert type(build_source(config)) is cls


@pytest.mark.parametrize("config, cls", [
    ({"type": "wav", "path": "a.wav"}, WavAudioSource),
    ({"type": "pyaudio", "device_index": 1}, PyAudioSource),
])
def test_build_audio_source_by_type(config: dict, cls: type) -> None:
    assert type(build_audio_source(config)) is cls


def test_unknown_registered_type_is_named() -> None:
    class Other(BaseModel):
        model_config = ConfigDict(extra="forbid")
        type: str = Field(default="thermal", description="a kind nobody registered")

    with pytest.raises(SourceError, match=r"no frame source of type 'thermal'; known types: opencv, picamera2"):
        build_source(Other())


def test_register_a_new_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "_FRAME_SOURCES", dict(base._FRAME_SOURCES))  # registered only for this test

    class TestCardConfig(BaseModel):
        model_config = ConfigDict(extra="forbid")
        type: str = Field(default="test_card", description="a test card")

    @register_source
    class TestCard(FrameSource):
        type: ClassVar[str] = "test_card"

        def __init__(self, config: TestCardConfig) -> None:
            self.shown = False

        live = False  # type: ignore[assignment]

        def open(self) -> None:
            self.shown = False

        def read(self) -> Frame | None:
            if self.shown:
                return None
            self.shown = True
            return Frame(np.zeros((2, 2, 3), np.uint8), 0.0, 0)

        def close(self) -> None:
            pass

    with build_source(TestCardConfig()) as source:
        assert isinstance(source, TestCard)
        assert source.read() is not None and source.read() is None


def test_chunk_duration() -> None:
    assert AudioChunk(np.zeros(480, np.float32), 16000, 1.5).duration == pytest.approx(0.03)


def test_the_scenario_player_is_a_tool_reached_through_the_registry(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    import edge_app.capture.base as base

    assert "tools.scenarios.player" not in base._BUILTIN_MODULES
    monkeypatch.setitem(base._TOOL_MODULES, "scenario", "tools.no_such_player")
    monkeypatch.delitem(base._FRAME_SOURCES, "scenario", raising=False)
    with pytest.raises(SourceError, match=r"the 'scenario' source is a development tool \(tools.no_such_player\)"):
        build_source({"type": "scenario", "path": str(tmp_path)})
    assert "tools.no_such_player" not in sys.modules
