"""Clips: constant-rate slots that keep real time, and MJPG .avi files OpenCV plays back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_app.evidence import EvidenceError
from edge_app.evidence.clip import PendingClip, check_clip, slot_frames, write_clip
from edge_app.evidence.jpeg import encode_jpeg
from edge_app.evidence.ring import JpegFrame
from tests.edge.evidence.conftest import mark_of

Marked = Callable[..., np.ndarray]
T0 = 1_760_000_000.0


def read_clip(path: Path) -> tuple[list[np.ndarray], float]:
    """Every frame of a clip and its frame rate, through OpenCV."""
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), f"OpenCV cannot open {path}"
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = []
    for _ in range(1000):
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames, fps


def _frame(marked: Marked, i: int, t: float, width: int = 640, height: int = 480) -> JpegFrame:
    bgr = cv2.cvtColor(marked(i, width, height), cv2.COLOR_RGB2BGR)
    return JpegFrame(t, encode_jpeg(bgr, 80), width, height)


def _stub(t: float) -> JpegFrame:
    return JpegFrame(t, b"", 1, 1)


def test_slots_at_the_frame_rate_are_the_frames_themselves() -> None:
    frames = [_stub(10 + i * 0.2) for i in range(31)]
    assert slot_frames(frames, 5) == frames


def test_a_slower_camera_repeats_frames_so_the_clip_keeps_real_time() -> None:
    frames = [_stub(i * 0.4) for i in range(16)]  # 2.5 fps over 6 s
    slots = slot_frames(frames, 5)
    assert len(slots) == 31
    assert [f.t for f in slots[:5]] == pytest.approx([0, 0, 0.4, 0.4, 0.8])


def test_a_pause_is_held_on_the_last_frame_before_it() -> None:
    frames = [_stub(0.0), _stub(0.2), _stub(2.0), _stub(2.2)]
    assert [f.t for f in slot_frames(frames, 5)] == pytest.approx([0, 0.2] + [0.2] * 8 + [2.0, 2.2])


def test_no_frames_no_slots() -> None:
    assert slot_frames([], 5) == []


def test_pending_clip_takes_frames_in_its_window_once() -> None:
    clip = PendingClip("a1", Path("a1.avi"), start=7.0, end=13.0, mtime=T0)
    for t in [6.8, 7.0, 9.0, 9.0, 8.0, 13.0, 13.2]:
        clip.add(_stub(t))
    assert [f.t for f in clip.frames] == [7.0, 9.0, 13.0]


def test_written_clip_plays_with_the_frames_rate_and_order(tmp_path: Path, marked: Marked) -> None:
    frames = [_frame(marked, i, 7 + i * 0.2) for i in range(31)]
    path = tmp_path / "20251009" / "a1.avi"
    assert write_clip(path, frames, fps=5, quality=80, mtime=T0) == 31
    played, fps = read_clip(path)
    assert fps == 5 and len(played) == 31
    assert (len(played) - 1) / fps == pytest.approx(6.0), "first to last frame spans pre + post"
    assert [mark_of(f) for f in played] == list(range(31))
    assert played[0].shape == (480, 640, 3)
    assert path.stat().st_mtime == T0
    assert sorted(p.name for p in path.parent.iterdir()) == ["a1.avi"]


def test_frames_of_another_size_are_scaled_to_the_first(tmp_path: Path, marked: Marked) -> None:
    frames = [_frame(marked, 1, 0.0), _frame(marked, 2, 0.2, 1280, 720), _frame(marked, 3, 0.4)]
    write_clip(tmp_path / "a1.avi", frames, fps=5, quality=80, mtime=T0)
    played, _ = read_clip(tmp_path / "a1.avi")
    assert [f.shape for f in played] == [(480, 640, 3)] * 3
    assert [mark_of(played[0]), mark_of(played[2])] == [1, 3]
    assert played[1][4:20, 4:20].mean() == pytest.approx(10, abs=3), "the 1280x720 frame's mark, scaled down"


def test_no_frames_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(EvidenceError, match="no frames for clip"):
        write_clip(tmp_path / "a1.avi", [], fps=5, quality=80, mtime=T0)
    assert list(tmp_path.iterdir()) == []


def test_a_truncated_clip_is_caught_by_the_read_back(tmp_path: Path, marked: Marked) -> None:
    path = tmp_path / "a1.avi"
    write_clip(path, [_frame(marked, i, i * 0.2) for i in range(5)], fps=5, quality=80, mtime=T0)
    check_clip(path, 5)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(EvidenceError, match=r"a1.avi is incomplete \(\d+ bytes, 0 of 5 frames indexed\)"):
        check_clip(path, 5)
