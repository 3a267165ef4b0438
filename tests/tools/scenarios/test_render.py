"""Rendering: real MJPG video and WAV of the right length, truth.json round-trips, caching, clear failures."""

from __future__ import annotations

import itertools
import json
import wave
from pathlib import Path

import cv2
import numpy as np
import pytest

from tools.scenarios import sources
from tools.scenarios.player import load_truth
from tools.scenarios.render import AUDIO, KEY, TRUTH, VIDEO, main, render, render_key, truth_of
from tools.scenarios.spec import load_spec

SHORT = """
name = "short"
description = "six seconds of the seated candidate"
view = "close"
set = "tuning"
duration = 6.0
enrolled = "franck_02045.jpg"
calibration_seconds = 5.0
seed = {seed}

[[segments]]
start = 0.0
end = 6.0
candidate = "franck_seated"
"""
PHONE = """
name = "phone"
description = "a phone, 8 s"
view = "close"
set = "check"
duration = 20.0
enrolled = "franck_02045.jpg"
calibration_seconds = 5.0

[[segments]]
start = 0.0
end = 5.0
candidate = "franck_seated"

[[segments]]
start = 5.0
end = 13.0
candidate = "franck_seated"
props = ["phone"]

[[segments]]
start = 13.0
end = 20.0
candidate = "franck_seated"

[[alerts]]
kind = "phone"
start = 5.0
end = 13.0
allowed_delay = 3.0
"""


@pytest.fixture
def definitions(tmp_path: Path) -> Path:
    folder = tmp_path / "definitions"
    folder.mkdir()
    (folder / "short.toml").write_text(SHORT.format(seed=3))
    return folder


def read_video(path: Path) -> tuple[list[np.ndarray], float]:
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = []
    for _ in range(1000):  # bounded
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames, fps


def test_a_short_scenario_renders_to_video_wav_and_truth(definitions: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = render(definitions / "short.toml", out)
    assert not done.skipped and done.folder == out / "short"
    assert sorted(p.name for p in done.folder.iterdir()) == sorted([VIDEO, AUDIO, TRUTH, KEY]), "no temp files left"
    frames, fps = read_video(done.folder / VIDEO)
    assert len(frames) == 60 and fps == pytest.approx(10.0)
    assert all(f.shape == (480, 640, 3) for f in frames)
    steps = [float(np.abs(a.astype(int) - b.astype(int)).mean()) for a, b in itertools.pairwise(frames)]
    assert min(steps) > 0.5, "every frame differs from the last (noise, shake): the video is not a frozen still"
    assert max(steps) < 8.0, "but only a little: a still scene must not look like a moved camera"
    with wave.open(str(done.folder / AUDIO)) as handle:
        assert (handle.getframerate(), handle.getnchannels(), handle.getsampwidth()) == (16000, 1, 2)
        assert handle.getnframes() == 6 * 16000


def test_truth_round_trips_and_satisfies_the_scenario_player(definitions: Path, tmp_path: Path) -> None:
    path = definitions / "short.toml"
    done = render(path, tmp_path / "out")
    written = json.loads((done.folder / TRUTH).read_text())
    spec = load_spec(path)
    assert written == json.loads(json.dumps(truth_of(spec, 60, render_key(path, spec), written["construction"])))
    assert load_truth(done.folder) == written, "edge_app's scenario player reads it as it is"
    assert written["frame_size"] == [640, 480] and written["enrolled"] == "franck_02045.jpg"
    assert written["alerts"] == [] and written["segments"][0]["candidate_person"] == "franck"
    assert (written["view"], written["set"]) == ("close", "tuning")
    seated = written["construction"]["segments"][0]
    assert set(seated) == {"candidate", "desk"} and 0.5 < seated["candidate"]["visible"] < 1.0  # the desk hides
    assert written["construction"]["sounds"][-1]["rms_dbfs"] <= -50, "room tone only"


def test_an_unchanged_scenario_is_skipped_and_a_changed_one_rendered(definitions: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = render(definitions / "short.toml", out)
    stamp = (first.folder / VIDEO).stat().st_mtime_ns
    again = render(definitions / "short.toml", out)
    assert again.skipped and (first.folder / VIDEO).stat().st_mtime_ns == stamp
    (definitions / "short.toml").write_text(SHORT.format(seed=4))
    changed = render(definitions / "short.toml", out)
    assert not changed.skipped and (first.folder / VIDEO).stat().st_mtime_ns != stamp
    (first.folder / AUDIO).unlink()
    assert not render(definitions / "short.toml", out).skipped, "a missing output is rendered again"


def test_the_command_line_renders_and_reports(definitions: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--definitions", str(definitions), "--out", str(tmp_path / "out")]
    assert main([*args, "--only", "short"]) == 0
    assert main([*args, "--only", "short"]) == 0
    assert "short: unchanged" in capsys.readouterr().out
    assert main([*args, "--only", "nothing"]) == 1
    assert "no scenario 'nothing'" in capsys.readouterr().err


def test_one_bad_definition_does_not_stop_the_others(definitions: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    (definitions / "bad.toml").write_text('name = "bad"\n')
    assert main(["--definitions", str(definitions), "--out", str(tmp_path / "out")]) == 1
    captured = capsys.readouterr()
    assert "FAILED bad:" in captured.err and "description: Field required" in captured.err
    assert (tmp_path / "out" / "short" / VIDEO).is_file()


def test_the_phone_scenario_fails_clearly_without_the_phone_photos(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVIGIL_FIND_PHONE", str(tmp_path / "no_such_folder"))
    (tmp_path / "phone.toml").write_text(PHONE)
    with pytest.raises(sources.SourceMissing, match=r"needs the labelled phone photos in .*no_such_folder"):
        render(tmp_path / "phone.toml", tmp_path / "out")
    assert not (tmp_path / "out" / "phone" / VIDEO).exists()
    assert not list((tmp_path / "out" / "phone").glob("*.avi")), "no partial video is left behind"
