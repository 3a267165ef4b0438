"""Scenario folders (real MJPG video, real WAV, truth.json) played as a camera, with an injected clock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edge_app.capture import ScenarioSource, ScenarioSourceConfig, SourceError, build_source, load_truth
from tests.edge.capture.media import FakeClock, frame_number, tone, write_avi, write_wav

TRUTH: dict[str, Any] = {
    "name": "phone_on_desk",
    "fps": 10,
    "duration": 3.0,
    "frame_size": [64, 48],
    "alerts": [{"kind": "phone", "start": 1.0, "end": 2.5}],
    "seed": 7,
}


def make_scenario(folder: Path, frames: int = 30, audio: bool = True) -> Path:
    folder.mkdir()
    write_avi(folder / "video.avi", frames, fps=10)
    if audio:
        write_wav(folder / "audio.wav", tone(440, frames / 10, 16000, 0.2), 16000)
    (folder / "truth.json").write_text(json.dumps(TRUTH))
    return folder


def test_plays_every_frame_with_media_time(tmp_path: Path) -> None:
    source = build_source({"type": "scenario", "path": str(make_scenario(tmp_path / "s"))})
    assert isinstance(source, ScenarioSource) and not source.live and not source.realtime
    with source:
        frames = [source.read() for _ in range(31)]
    assert frames[-1] is None
    assert [f.index for f in frames if f] == list(range(30))
    assert [f.t for f in frames if f] == pytest.approx([i / 10 for i in range(30)], abs=1e-6)
    assert [frame_number(f.image) for f in frames if f] == list(range(30))


def test_realtime_paces_frames_to_the_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    config = ScenarioSourceConfig(path=make_scenario(tmp_path / "s", frames=5), realtime=True)
    source = ScenarioSource(config, clock=clock, sleep=clock.sleep)
    assert source.realtime and not source.live
    source.open()
    start = clock.now
    delivered = []
    for _ in range(5):
        frame = source.read()
        assert frame is not None
        delivered.append((frame.index, round(clock.now - start, 6)))
    assert delivered == [(0, 0.0), (1, 0.1), (2, 0.2), (3, 0.3), (4, 0.4)]
    assert source.read() is None and source.skipped == 0
    source.close()


def test_realtime_skips_frames_a_slow_reader_missed(tmp_path: Path) -> None:
    clock = FakeClock()
    source = ScenarioSource(ScenarioSourceConfig(path=make_scenario(tmp_path / "s"), realtime=True),
                            clock=clock, sleep=clock.sleep)
    source.open()
    indices = []
    for _ in range(100):
        frame = source.read()
        if frame is None:
            break
        indices.append(frame.index)
        assert frame_number(frame.image) == frame.index  # the frame shown is the one its index names
        clock.now += 0.235  # the analysis takes 235 ms per frame
    source.close()
    # frame i is current during [i/10, (i+1)/10): at 0, 0.235, 0.47, 0.705 ... the camera shows 0, 2, 4, 7 ...
    assert indices == [0, 2, 4, 7, 9, 11, 14, 16, 18, 21, 23, 25, 28]
    assert source.skipped == 30 - len(indices)


def test_audio_shares_the_scenario_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    source = ScenarioSource(ScenarioSourceConfig(path=make_scenario(tmp_path / "s"), realtime=True),
                            clock=clock, sleep=clock.sleep)
    audio = source.audio(chunk_ms=100)
    assert audio is not None
    source.open()
    audio.open()
    assert source.read() is not None  # starts the shared clock at media time 0
    start = clock.now
    chunk = audio.read()
    assert chunk is not None and chunk.t == 0.0 and chunk.rate == 16000
    assert clock.now - start == pytest.approx(0.1)
    audio.close()
    source.close()


def test_silent_scenario_has_no_audio(tmp_path: Path) -> None:
    source = ScenarioSource(ScenarioSourceConfig(path=make_scenario(tmp_path / "s", audio=False)))
    assert source.audio() is None


def test_missing_folder_and_video_are_named(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"scenario .*nowhere: folder not found"):
        build_source({"type": "scenario", "path": str(tmp_path / "nowhere")}).open()
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match=r"scenario video .*empty/video\.avi: not found"):
        build_source({"type": "scenario", "path": str(tmp_path / "empty")}).open()


def test_load_truth_from_folder_or_file(tmp_path: Path) -> None:
    folder = make_scenario(tmp_path / "s", frames=2)
    assert load_truth(folder) == TRUTH
    assert load_truth(folder / "truth.json")["alerts"][0]["kind"] == "phone"
    assert ScenarioSource(ScenarioSourceConfig(path=folder)).truth()["seed"] == 7


@pytest.mark.parametrize("change, message", [
    ({"fps": None}, r"missing keys fps \(needs name, fps, duration, frame_size, alerts\)"),
    ({"fps": 0}, r"fps must be a number > 0"),
    ({"duration": "3s"}, r"duration must be a number >= 0"),
    ({"frame_size": [64]}, r"frame_size must be \[width, height\] in pixels"),
    ({"name": ""}, r"name must be a non-empty string"),
    ({"alerts": {"kind": "phone"}}, r"alerts must be a list"),
    ({"alerts": [{"kind": "phone", "start": 1}]}, r"alerts\[0\] must be an object with kind, start and end"),
    ({"alerts": [{"kind": "phone", "start": 2, "end": 1}]}, r"alerts\[0\]\.end must be a number of seconds >= start"),
    ({"alerts": [{"kind": 3, "start": 0, "end": 1}]}, r"alerts\[0\]\.kind must be a non-empty string"),
])
def test_load_truth_names_the_bad_field(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    truth = {**TRUTH, **change}
    truth = {k: v for k, v in truth.items() if v is not None}
    path = tmp_path / "truth.json"
    path.write_text(json.dumps(truth))
    with pytest.raises(SourceError, match=r"truth file .*truth\.json: " + message):
        load_truth(path)


@pytest.mark.parametrize("text, message", [
    ("[1, 2]", r"expected a JSON object, found list"),
    ('{"name": "x",\n "fps": }', r"not valid JSON \(line 2, column"),
])
def test_load_truth_rejects_non_objects(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "truth.json").write_text(text)
    with pytest.raises(SourceError, match=message):
        load_truth(tmp_path)


def test_load_truth_missing(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"truth file .*truth\.json: not found"):
        load_truth(tmp_path)
