"""The session loop end to end on a real video: calibration, one absence alert with evidence, clean stop."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import threading
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_app.capture.base import Frame, FrameSource
from edge_app.config import parse
from edge_app.loop import SessionRunner
from edge_app.vision.models import VisionModels, load_models
from tests.edge.conftest import write_scenario
from tests.edge.speech.test_keywords import THRESHOLDS, speech
from tests.need import needs_espeak

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def models(models_dir: Path) -> VisionModels:
    return load_models(models_dir, "int8", threads=1)


@pytest.fixture(scope="module")
def leaves_and_returns(scene, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    frames = ([scene("obama2.jpg", i) for i in range(70)] + [scene(None, i) for i in range(90)]
              + [scene("obama2.jpg", i) for i in range(50)])
    return write_scenario(tmp_path_factory.mktemp("scenarios") / "leaves", frames)


def config_for(folder: Path, data: Path, **camera: Any) -> Any:
    return parse({"device_id": "unit-test", "data_dir": str(data),
                  "camera": {"type": "scenario", "path": str(folder), **camera},
                  "analysis": {"calibration_seconds": 4}}, environ={})


def test_an_absence_is_one_alert_with_evidence(models: VisionModels, leaves_and_returns: Path,
                                               tmp_path: Path) -> None:
    messages: list[dict[str, Any]] = []
    config = config_for(leaves_and_returns, tmp_path)
    stats = SessionRunner(config, messages.append, models).run(threading.Event())
    assert stats.frames == 210 and stats.dropped == 0  # a file played for evaluation loses no frame
    types = [m["type"] for m in messages]
    assert types[0] == "calibration" and types[-1] == "status" and messages[-1]["state"] == "source_ended"
    alerts = [m for m in messages if m["type"] == "alert"]
    assert [(a["kind"], a["phase"]) for a in alerts] == [("absent", "start"), ("absent", "end")]
    start, end = alerts
    assert start["id"] == end["id"]
    assert 7.0 <= start["since"] <= 7.6  # the seat empties at 7.0 s
    assert start["t"] <= 7.0 + config.rules.absent.min_duration + 1.0
    assert 16.0 < end["t"] <= 16.0 + config.rules.absent.end_after + 1.0
    snapshot = Path(start["evidence"]["path"])
    assert snapshot.is_file() and snapshot.is_relative_to(tmp_path)
    assert hashlib.sha256(snapshot.read_bytes()).hexdigest() == start["evidence"]["sha256"]
    assert Path(start["evidence"]["clip"]).is_file()  # fed by the ring encoder off the loop thread
    assert stats.evidence_dropped == 0
    assert len(stats.stages_ms["evidence"]) == 210 and {"detector", "rules"} <= set(stats.stages_ms)


def test_run_stops_cleanly_on_sigterm(leaves_and_returns: Path, tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text(f'device_id = "unit-test"\ndata_dir = "data"\n[camera]\ntype = "scenario"\n'
                      f'path = "{leaves_and_returns}"\nrealtime = true\n[analysis]\ncalibration_seconds = 2\n')
    process = subprocess.Popen([sys.executable, "-m", "edge_app", "run", "--config", str(config)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = json.loads(process.stdout.readline())  # calibration after 2 s of a real-time camera
        assert first["type"] == "calibration"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "session over" in err
    assert "source_ended" not in out  # it stopped on the signal, long before the 21 s video ended


class FreezingCamera(FrameSource):
    """A live camera (fake: no camera here) that delivers frames, freezes, then delivers again."""

    type = "freezing"

    def __init__(self, frames: list, freeze_after: int, freeze: threading.Event) -> None:  # type: ignore[type-arg]
        self.frames, self.freeze_after, self.freeze = frames, freeze_after, freeze
        self.index = 0

    def open(self) -> None:
        pass

    def read(self) -> Frame | None:
        if self.index == self.freeze_after:
            self.freeze.wait(timeout=10)  # blocked inside the driver until the test thaws it
        if self.index >= len(self.frames):
            return None
        frame = Frame(self.frames[self.index], self.index / 10, self.index)
        self.index += 1
        return frame

    def close(self) -> None:
        pass

    @property
    def live(self) -> bool:
        return True


def test_a_stalled_camera_is_reported_then_recovers(models: VisionModels, scene, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    thaw = threading.Event()
    camera = FreezingCamera([scene("obama2.jpg", i) for i in range(30)], freeze_after=20, freeze=thaw)
    config = parse({"device_id": "unit-test", "data_dir": str(tmp_path), "stall_after": 0.5,
                    "camera": {"type": "scenario", "path": str(tmp_path)},
                    "analysis": {"calibration_seconds": 1}}, environ={})
    messages: list[dict[str, Any]] = []

    def emit(message: dict[str, Any]) -> None:
        messages.append(message)
        if message.get("state") == "camera_stalled":
            thaw.set()

    stats = SessionRunner(config, emit, models).run(threading.Event(), source=camera)
    states = [m["state"] for m in messages if m["type"] == "status"]
    assert states == ["camera_stalled", "camera_recovered", "source_ended"]
    assert stats.stalls == 1
    assert stats.frames + stats.dropped == 30 and stats.dropped > 0  # a live camera: stale frames are skipped


def test_a_broken_microphone_does_not_stop_the_session(models: VisionModels, leaves_and_returns: Path,
                                                       tmp_path: Path) -> None:
    broken = tmp_path / "mic.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    config = parse({"device_id": "unit-test", "data_dir": str(tmp_path),
                    "camera": {"type": "scenario", "path": str(leaves_and_returns)},
                    "audio": {"type": "wav", "path": str(broken)},
                    "analysis": {"calibration_seconds": 4}}, environ={})
    messages: list[dict[str, Any]] = []
    stats = SessionRunner(config, messages.append, models).run(threading.Event())
    assert messages[0]["state"] == "audio_unavailable" and "mic.wav" in messages[0]["reason"]
    assert stats.frames == 210
    assert [(m["kind"], m["phase"]) for m in messages if m["type"] == "alert"] == [("absent", "start"),
                                                                                 ("absent", "end")]


@needs_espeak
def test_a_spoken_keyword_reaches_the_alerts_with_the_word(models: VisionModels, leaves_and_returns: Path,
                                                           tmp_path: Path) -> None:
    samples, rate = speech(tmp_path, "go forward ten meters")
    track = np.zeros(21 * rate, np.float32)
    track[10 * rate : 10 * rate + samples.size] = samples  # after calibration, while the candidate is away
    wav = tmp_path / "audio.wav"
    with wave.open(str(wav), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes((np.clip(track, -1, 1) * 32767).astype("<i2").tobytes())
    messages: list[dict[str, Any]] = []
    config = parse({"device_id": "unit-test", "data_dir": str(tmp_path / "data"),
                    "camera": {"type": "scenario", "path": str(leaves_and_returns)},
                    "audio": {"type": "wav", "path": str(wav), "realtime": False},
                    "analysis": {"calibration_seconds": 4},
                    "rules": {"speech_keyword": {"enabled": True, "keywords": ["ten", "answer"],
                                                 "thresholds": THRESHOLDS}}}, environ={})
    SessionRunner(config, messages.append, models).run(threading.Event())
    said = [m for m in messages if m["type"] == "alert" and m["kind"] == "speech_keyword" and m["phase"] == "start"]
    assert [m["keyword"] for m in said] == ["ten"]
    assert 10.0 < said[0]["t"] < 10.0 + samples.size / rate + 1.5
