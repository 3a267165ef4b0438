"""The RAM ring: thinned to a steady rate, bounded in frames, age and bytes, JPEG frames that decode."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from edge_app.evidence import EvidenceError
from edge_app.evidence.jpeg import decode_jpeg
from edge_app.evidence.ring import FrameRing, Thinner
from tests.edge.evidence.conftest import mark_of

Marked = Callable[..., np.ndarray]


def _ring(seconds: float = 10, max_frames: int = 100, fps: float = 5, max_side: int = 1280) -> FrameRing:
    return FrameRing(seconds, max_frames, fps, max_side, quality=80)


def test_thinner_keeps_an_even_five_fps_out_of_30_fps() -> None:
    thinner = Thinner(5)
    kept = [i / 30 for i in range(300) if thinner.keep(i / 30)]
    assert len(kept) == 50
    assert np.allclose(np.diff(kept), 0.2)


def test_thinner_keeps_five_of_seven_fps_in_every_second() -> None:
    thinner = Thinner(5)
    kept = [i / 7 for i in range(70) if thinner.keep(i / 7)]
    per_second = np.bincount(np.floor(np.array(kept) + 1e-9).astype(int), minlength=10)
    assert per_second.tolist() == [5] * 10


def test_thinner_keeps_everything_slower_than_its_rate_and_restarts_after_a_gap() -> None:
    thinner = Thinner(5)
    assert all(thinner.keep(t) for t in [0.0, 0.5, 1.0, 1.5, 10.0, 10.2, 10.4])
    assert not thinner.keep(10.45)


def test_ring_is_bounded_by_age(marked: Marked) -> None:
    ring = _ring(seconds=2, fps=5)
    for i in range(50):
        ring.push(marked(i), i * 0.2)
    times = [f.t for f in ring.since(0)]
    assert times[0] == pytest.approx(7.8) and times[-1] == pytest.approx(9.8)
    assert len(ring) == 11


def test_ring_is_bounded_in_frames_and_bytes(marked: Marked) -> None:
    ring = _ring(seconds=10, max_frames=20, fps=5)
    raw = 640 * 480 * 3
    for i in range(60):
        ring.push(marked(i % 50), i * 0.2)
        assert len(ring) <= 20
        assert ring.nbytes == sum(len(f.jpeg) for f in ring.since(0))
        assert ring.nbytes <= len(ring) * raw / 5, "JPEG frames should be far smaller than raw ones"
    assert len(ring) == 20
    assert ring.since(0)[0].t == pytest.approx(40 * 0.2)


def test_frames_decode_to_what_was_pushed(marked: Marked) -> None:
    ring = _ring()
    ring.push(marked(17), 1.0)
    (frame,) = ring.since(0)
    decoded = decode_jpeg(frame.jpeg)
    assert decoded.shape == (480, 640, 3) and (frame.width, frame.height) == (640, 480)
    assert mark_of(decoded) == 17
    rgb = marked(17)[..., ::-1]  # decoded frames are BGR
    assert np.abs(decoded.astype(int) - rgb).mean() < 6


def test_frames_wider_than_max_side_are_scaled_down(marked: Marked) -> None:
    ring = _ring(max_side=320)
    ring.push(marked(3, 1280, 720), 0.0)
    (frame,) = ring.since(0)
    assert (frame.width, frame.height) == (320, 180) == decode_jpeg(frame.jpeg).shape[1::-1]


def test_faster_pushes_are_thinned(marked: Marked) -> None:
    ring = _ring(fps=5)
    kept = [ring.push(marked(0), i / 30) is not None for i in range(30)]
    assert sum(kept) == 5 and len(ring) == 5


def test_a_late_timestamp_is_dropped_but_a_restarted_clock_restarts_the_ring(marked: Marked) -> None:
    ring = _ring(seconds=10)
    for i in range(10):
        ring.push(marked(i), 100 + i * 0.2)
    assert ring.push(marked(40), 100.5) is None, "a frame older than the newest is dropped"
    assert len(ring) == 10
    assert ring.push(marked(41), 3.0) is not None, "a clock that went back more than the ring restarts it"
    assert [f.t for f in ring.since(0)] == [3.0]


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((480, 640, 3), np.float32), r"RGB uint8 array \(H, W, 3\), got float32 \(480, 640, 3\)"),
        (np.zeros((480, 640), np.uint8), r"got uint8 \(480, 640\)"),
        (np.zeros((0, 640, 3), np.uint8), r"got uint8 \(0, 640, 3\)"),
        ([[0, 0, 0]], "got list"),
    ],
)
def test_a_malformed_frame_is_a_specific_error(image: object, message: str) -> None:
    with pytest.raises(EvidenceError, match=message):
        _ring().push(image, 0.0)  # type: ignore[arg-type]


def test_admit_thins_and_flags_a_clock_restart_that_add_applies(marked: Marked) -> None:
    ring = _ring(seconds=2, fps=5)
    assert [ring.admit(t) for t in (0.0, 0.1, 0.2)] == [False, None, False]  # 0.1 s is thinned out
    ring.add(ring.encode(marked(0), 0.0))
    ring.add(ring.encode(marked(2), 0.2))
    assert ring.admit(0.15) is None  # late, within the ring's span: dropped
    assert ring.admit(-5.0) is True  # far behind the newest frame: the clock restarted
    ring.add(ring.encode(marked(9), -5.0), restart=True)
    assert [mark_of(decode_jpeg(f.jpeg)) for f in ring.since(-10)] == [9]
    assert ring.nbytes == len(ring.since(-10)[0].jpeg)
