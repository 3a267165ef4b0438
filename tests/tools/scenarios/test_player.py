"""Scenario folders (real MJPG video, real WAV, truth.json) played as a camera, with an injected clock."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge_app.capture import ScenarioSourceConfig, SourceError, build_source
from edge_app.config import parse
from tests.edge.capture.media import FakeClock, frame_number, tone, write_avi, write_wav
from tools.scenarios.player import ScenarioSource, load_truth
from tools.scenarios.screen import SCREEN_QUAD

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


# --- the candidate's PC screen (tools/scenarios/screen.py) -------------------------------------------------

SCREEN_SIZE = (320, 240)
BACKDROP = 90  # grey level of the synthetic scenario frames


def screen_scenario(folder: Path, frames: int = 8) -> Path:
    folder.mkdir()
    image = np.full((SCREEN_SIZE[1], SCREEN_SIZE[0], 3), BACKDROP, np.uint8)
    write_avi(folder / "video.avi", [image] * frames, fps=10)
    (folder / "truth.json").write_text(json.dumps({**TRUTH, "frame_size": list(SCREEN_SIZE)}))
    return folder


def show(path: Path, level: int, stamp: int) -> None:
    """Put a uniform ``level`` PNG on the PC screen; ``stamp`` (s) is its mtime, so every change is seen."""
    assert cv2.imwrite(str(path), np.full((60, 60), level, np.uint8))
    os.utime(path, (stamp, stamp))


def screen_centre(image: np.ndarray) -> float:
    """Mean grey level around the middle of the screen quad."""
    corners = np.array(SCREEN_QUAD) * SCREEN_SIZE
    cx, cy = corners.mean(axis=0).astype(int)
    return float(image[cy - 3:cy + 4, cx - 3:cx + 4].mean())


def outside_screen(image: np.ndarray) -> np.ndarray:
    """The frame with the screen quad's bounding box blanked."""
    corners = np.array(SCREEN_QUAD) * SCREEN_SIZE
    (x1, y1), (x2, y2) = np.floor(corners.min(axis=0)).astype(int), np.ceil(corners.max(axis=0)).astype(int)
    out = image.copy()
    out[y1:y2 + 1, x1:x2 + 1] = 0
    return out


def read_all(source: ScenarioSource, clock: FakeClock, steps: list[float]) -> list[np.ndarray]:
    """One frame per step, after moving the clock on by that many seconds."""
    images = []
    for step in steps:
        clock.now += step
        frame = source.read()
        assert frame is not None
        images.append(frame.image)
    return images


def test_screen_overlay_follows_the_file(tmp_path: Path) -> None:
    folder = screen_scenario(tmp_path / "s")
    with build_source({"type": "scenario", "path": str(folder)}) as plain:
        reference = [frame.image for frame in iter(plain.read, None)]
    screen = tmp_path / "screen.png"
    show(screen, 255, 1_000_000)
    clock = FakeClock()
    source = ScenarioSource(ScenarioSourceConfig(path=folder, screen=screen), clock=clock, sleep=clock.sleep)
    assert source.screen is not None
    source.open()
    white = source.read()
    assert white is not None and screen_centre(white.image) > 220 and source.screen.showing
    assert np.array_equal(outside_screen(white.image), outside_screen(reference[0]))  # the person is untouched
    show(screen, 0, 1_000_100)
    images = read_all(source, clock, [0.2, 0.4])  # looked at again 0.5 s after the last look, not per frame
    assert screen_centre(images[0]) > 220 and screen_centre(images[1]) < 40
    screen.unlink()  # the PC client hides the code once paired
    images = read_all(source, clock, [0.1, 0.5, 0.1])
    assert screen_centre(images[0]) < 40
    assert np.array_equal(images[1], reference[5]) and np.array_equal(images[2], reference[6])
    assert not source.screen.showing
    source.close()


def test_corrupt_screen_image_shows_nothing_and_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = screen_scenario(tmp_path / "s")
    with build_source({"type": "scenario", "path": str(folder)}) as plain:
        reference = [frame.image for frame in iter(plain.read, None)]
    screen = tmp_path / "screen.png"
    screen.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)  # a PNG signature, then rubbish
    clock = FakeClock()
    source = ScenarioSource(ScenarioSourceConfig(path=folder, screen=screen), clock=clock, sleep=clock.sleep)
    source.open()
    with caplog.at_level(logging.WARNING, logger="tools.scenarios.screen"):
        images = read_all(source, clock, [0.0, 0.6, 0.6, 0.6])
    assert all(np.array_equal(image, ref) for image, ref in zip(images, reference, strict=False))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "not an image OpenCV can decode" in warnings[0].getMessage()
    show(screen, 255, 1_000_000)  # the client rewrites it properly: the screen comes back
    assert screen_centre(read_all(source, clock, [0.6])[0]) > 220
    source.close()


def test_missing_screen_file_shows_nothing(tmp_path: Path) -> None:
    folder = screen_scenario(tmp_path / "s", frames=2)
    with build_source({"type": "scenario", "path": str(folder)}) as plain:
        reference = plain.read()
    with build_source({"type": "scenario", "path": str(folder), "screen": str(tmp_path / "none.png")}) as source:
        frame = source.read()
    assert reference is not None and frame is not None and np.array_equal(frame.image, reference.image)


def test_config_resolves_the_screen_path_beside_the_config(tmp_path: Path) -> None:
    config = parse({"device_id": "unit-1", "data_dir": "data",
                    "camera": {"type": "scenario", "path": "s", "screen": "pc/qr.png"}}, environ={}, base=tmp_path)
    assert isinstance(config.camera, ScenarioSourceConfig)
    assert config.camera.screen == tmp_path / "pc" / "qr.png" and config.camera.path == tmp_path / "s"
