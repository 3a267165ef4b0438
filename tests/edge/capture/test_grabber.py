"""LatestFrameGrabber with real video files and small fake cameras whose frames the test releases one by one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from edge_app.capture import (
    Frame,
    FrameSource,
    LatestFrameGrabber,
    ScenarioSourceConfig,
    SourceError,
    build_source,
)
from tests.edge.capture.media import write_avi
from tools.scenarios.player import ScenarioSource


def wait_for(condition: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    """Bounded wait for a background thread to reach a state (fails the test rather than hang)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


class GatedCamera(FrameSource):
    """A fake live camera: read() blocks until the test releases a frame; ``count`` frames, then the end."""

    type = "gated"

    def __init__(self, count: int = 1000, fail_at: int | None = None) -> None:
        self.count = count
        self.fail_at = fail_at
        self.gate = threading.Semaphore(0)
        self.reads = 0
        self.waiting = False
        self.closed = False
        self.unplugged = False

    @property
    def live(self) -> bool:
        return True

    def unplug(self) -> None:
        """Wake a blocked read() and end the stream."""
        self.unplugged = True
        self.gate.release()

    def release(self, frames: int = 1) -> None:
        for _ in range(frames):
            self.gate.release()

    def open(self) -> None:
        self.closed = False

    def read(self) -> Frame | None:
        if self.reads == self.fail_at:
            raise SourceError("camera 9 gave no frame (3 tries in a row failed)")
        if self.reads >= self.count:
            return None
        self.waiting = True
        acquired = self.gate.acquire(timeout=30)  # bounded, so a broken test cannot hang the suite
        self.waiting = False
        if not acquired:
            raise SourceError("gated camera: the test never released a frame")
        if self.unplugged:
            return None
        frame = Frame(np.full((4, 4, 3), self.reads % 256, np.uint8), t=float(self.reads), index=self.reads)
        self.reads += 1
        return frame

    def close(self) -> None:
        self.closed = True


class FastCamera(GatedCamera):
    """A fake live camera that delivers ``count`` frames as fast as it is read."""

    def read(self) -> Frame | None:
        self.release()
        return super().read()


class ManualClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_keeps_only_the_newest_frame() -> None:
    camera = GatedCamera()
    grabber = LatestFrameGrabber(camera)
    assert grabber.drop  # live sources drop stale frames
    grabber.start()
    try:
        camera.release(5)
        wait_for(lambda: grabber.frames == 5, "5 frames")
        frame = grabber.get(timeout=5)
        assert frame is not None and frame.index == 4
        assert grabber.dropped == 4
        assert grabber.get(timeout=0.01) is None  # nothing newer yet
        camera.release(3)
        wait_for(lambda: grabber.frames == 8, "8 frames")
        frame = grabber.get(timeout=5)
        assert frame is not None and frame.index == 7
        assert grabber.dropped == 6
    finally:
        camera.unplug()
        assert grabber.stop()


def test_fast_live_source_and_slow_consumer_account_for_every_frame() -> None:
    camera = FastCamera(count=300)
    taken: list[int] = []
    with LatestFrameGrabber(camera) as grabber:
        for _ in range(10_000):
            frame = grabber.get(timeout=5)
            if frame is None:
                break
            taken.append(frame.index)
            time.sleep(0.002)  # a slow analysis
    assert grabber.ended and grabber.error is None
    assert taken == sorted(set(taken))
    assert taken[-1] == 299  # the newest frame is never lost
    assert len(taken) + grabber.dropped == grabber.frames == 300


def test_non_realtime_file_drops_nothing(tmp_path: Path) -> None:
    source = build_source({"type": "opencv", "uri": str(write_avi(tmp_path / "v.avi", 40))})
    grabber = LatestFrameGrabber(source)
    assert not grabber.drop
    taken = []
    with grabber:
        for _ in range(100):
            frame = grabber.get(timeout=10)
            if frame is None:
                break
            taken.append(frame.index)
            time.sleep(0.002)
    assert taken == list(range(40))
    assert grabber.dropped == 0 and grabber.ended and not grabber.running


def test_realtime_scenario_drops_and_plain_scenario_does_not(tmp_path: Path) -> None:
    assert LatestFrameGrabber(ScenarioSource(ScenarioSourceConfig(path=tmp_path, realtime=True))).drop
    assert not LatestFrameGrabber(ScenarioSource(ScenarioSourceConfig(path=tmp_path, realtime=False))).drop


def test_stall_detection_with_a_source_that_blocks() -> None:
    camera = GatedCamera()
    clock = ManualClock(100.0)
    grabber = LatestFrameGrabber(camera, clock=clock, join_timeout=5)
    assert not grabber.stalled(1e9, 1.0)  # not started
    grabber.start()
    wait_for(lambda: camera.waiting, "the reader to block in read()")
    assert not grabber.stalled(100.5, stall_after=1.0)
    assert grabber.stalled(101.5, stall_after=1.0)
    clock.now = 200.0
    camera.release()
    wait_for(lambda: grabber.frames == 1 and camera.waiting, "the next read")
    assert not grabber.stalled(200.5, stall_after=1.0)
    assert grabber.stalled(201.5, stall_after=1.0)
    camera.unplug()
    assert grabber.stop()


def test_waiting_for_a_slow_consumer_is_not_a_stall() -> None:
    camera = GatedCamera()
    grabber = LatestFrameGrabber(camera, drop=False, clock=ManualClock(0.0))
    grabber.start()
    camera.release(2)
    wait_for(lambda: camera.reads == 2, "two reads")  # frame 0 in the slot, frame 1 waiting for it
    assert not grabber.stalled(1e6, stall_after=1.0)
    first, second = grabber.get(timeout=5), grabber.get(timeout=5)
    assert first is not None and second is not None and (first.index, second.index) == (0, 1)
    assert grabber.dropped == 0
    camera.unplug()
    assert grabber.stop()


def test_stop_is_clean(tmp_path: Path) -> None:
    source = build_source({"type": "opencv", "uri": str(write_avi(tmp_path / "v.avi", 40))})
    grabber = LatestFrameGrabber(source)
    grabber.start()
    assert grabber.get(timeout=10) is not None
    assert grabber.stop() is True
    assert not grabber.running and not grabber.ended and grabber.error is None
    with pytest.raises(SourceError, match="read before open"):  # the reader closed the source on its way out
        source.read()
    assert grabber.get(timeout=0.01) is None


def test_stop_with_a_source_blocked_in_read() -> None:
    camera = GatedCamera()
    grabber = LatestFrameGrabber(camera, join_timeout=0.05)
    grabber.start()
    wait_for(lambda: camera.waiting, "the reader to block")
    assert grabber.stop() is False  # still inside read(); the daemon thread is left to finish
    camera.release()
    wait_for(lambda: camera.closed, "the reader to close the source once read() returned")
    assert not grabber.running


def test_a_source_that_raises_sets_error() -> None:
    camera = GatedCamera(fail_at=2)
    grabber = LatestFrameGrabber(camera, drop=False)
    grabber.start()
    camera.release(2)
    frames = [grabber.get(timeout=5) for _ in range(3)]
    assert [f.index for f in frames if f] == [0, 1] and frames[2] is None
    wait_for(lambda: not grabber.running, "the reader to stop")
    assert isinstance(grabber.error, SourceError) and "camera 9 gave no frame" in str(grabber.error)
    assert camera.closed and not grabber.ended
    assert grabber.stop()


def test_start_twice_and_open_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"missing\.avi: not found"):
        LatestFrameGrabber(build_source({"type": "opencv", "uri": str(tmp_path / "missing.avi")})).start()
    camera = FastCamera(count=1)
    grabber = LatestFrameGrabber(camera)
    grabber.start()
    with pytest.raises(RuntimeError, match="called twice"):
        grabber.start()
    assert grabber.stop()
