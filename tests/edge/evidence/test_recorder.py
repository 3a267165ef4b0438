"""EvidenceRecorder as the analysis loop uses it: snapshots, clips around the alert, errors, quota, retention."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_app.evidence import Evidence, EvidenceConfig, EvidenceError, EvidenceRecorder
from edge_app.evidence.jpeg import decode_jpeg
from edge_app.evidence.recorder import MAX_PENDING_CLIPS, MAX_QUEUED_FRAMES
from edge_app.evidence.ring import JpegFrame
from edge_app.vision.preprocess import read_rgb
from tests.edge.evidence.conftest import mark_of
from tests.edge.evidence.test_clip import read_clip
from tools.fixtures import photo

Marked = Callable[..., np.ndarray]
T0 = 1_760_000_000.0  # 2025-10-09 UTC
DAY = 86400.0
ROOT = Path(__file__).resolve().parents[3]


def _files(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


def _run(recorder: EvidenceRecorder, marked: Marked, start: int, stop: int, step: float = 0.2) -> None:
    """Push marked frames start..stop-1 at ``step`` seconds (frame i at i * step, marked i % 50)."""
    for i in range(start, stop):
        recorder.push(marked(i % 50), i * step)


def test_snapshot_is_the_frame_with_its_digest(tmp_path: Path, marked: Marked) -> None:
    recorder = EvidenceRecorder(EvidenceConfig(clip=False), tmp_path)
    ev = recorder.snapshot("01JAB3XK4Z9QW8R7M6N5P4S3T2", "phone", marked(9), 10.0, None, now_wall=T0)
    assert ev == Evidence("01JAB3XK4Z9QW8R7M6N5P4S3T2", tmp_path / "20251009" / "01JAB3XK4Z9QW8R7M6N5P4S3T2.jpg",
                          hashlib.sha256(ev.path.read_bytes()).hexdigest(), ev.path.stat().st_size, None)
    image = read_rgb(str(ev.path))
    assert image.shape == (480, 640, 3) and mark_of(image) == 9
    assert np.abs(image.astype(int) - marked(9)).mean() < 6
    assert ev.path.stat().st_mtime == T0
    assert _files(tmp_path) == ["20251009/01JAB3XK4Z9QW8R7M6N5P4S3T2.jpg"]


def test_a_large_frame_is_scaled_to_snapshot_max_side(tmp_path: Path) -> None:
    big = read_rgb(str(photo("bus.jpg")))  # 810 x 1080
    ev = EvidenceRecorder(EvidenceConfig(snapshot_max_side=540), tmp_path).snapshot("a1", "phone", big, 0.0,
                                                                                    now_wall=T0)
    assert read_rgb(str(ev.path)).shape == (540, 405, 3)


def test_the_box_is_drawn_in_red_where_the_alert_is(tmp_path: Path, marked: Marked) -> None:
    recorder = EvidenceRecorder(EvidenceConfig(clip=False), tmp_path)
    plain = read_rgb(str(recorder.snapshot("plain", "phone", marked(0), 0.0, now_wall=T0).path))
    boxed = read_rgb(str(recorder.snapshot("boxed", "phone", marked(0), 0.0, (200, 150, 400, 350), now_wall=T0).path))
    edge = boxed[250, 199:202].astype(int)  # the box's left side at x = 200, 2-3 px wide at 640x480
    assert (edge[:, 0] > 180).all() and (edge[:, 1:] < 90).all(), f"expected red on the box edge, got {edge}"
    assert np.abs(boxed[200:300, 250:350].astype(int) - plain[200:300, 250:350]).mean() < 3, "inside unchanged"
    assert np.abs(boxed[400:, :].astype(int) - plain[400:, :]).mean() < 3, "below the box unchanged"


def test_a_non_finite_box_still_gives_a_snapshot(tmp_path: Path, marked: Marked) -> None:
    recorder = EvidenceRecorder(EvidenceConfig(clip=False), tmp_path)
    ev = recorder.snapshot("a1", "phone", marked(0), 0.0, (float("nan"), 0, 10, 10), now_wall=T0)
    assert ev.path.is_file()


def test_the_clip_runs_from_pre_to_post_seconds_and_is_written_once_post_roll_is_in(
    tmp_path: Path, marked: Marked
) -> None:
    recorder = EvidenceRecorder(EvidenceConfig(), tmp_path)
    _run(recorder, marked, 0, 51)  # up to t = 10.0
    ev = recorder.snapshot("a1", "phone", marked(50 % 50), 10.0, None, now_wall=T0)
    assert ev.clip_path == tmp_path / "20251009" / "a1.avi"
    _run(recorder, marked, 51, 65)  # up to t = 12.8
    assert not ev.clip_path.exists(), "the clip waits for its post-roll"
    _run(recorder, marked, 65, 66)  # t = 13.0 completes it
    frames, fps = read_clip(ev.clip_path)
    assert fps == 5 and len(frames) == 31
    assert [mark_of(f) for f in frames] == [i % 50 for i in range(35, 66)], "frames of t = 7.0 .. 13.0 in order"
    assert (frames[0].shape[1], frames[0].shape[0]) == (640, 480)
    assert ev.clip_path.stat().st_mtime == T0
    assert recorder.pending == {} and recorder.clips_written == 1
    assert _files(tmp_path) == ["20251009/a1.avi", "20251009/a1.jpg"]


def test_a_30_fps_camera_gives_the_same_clip(tmp_path: Path, marked: Marked) -> None:
    recorder = EvidenceRecorder(EvidenceConfig(), tmp_path)
    for i in range(301):
        recorder.push(marked(i // 6 % 50), i / 30)
    ev = recorder.snapshot("a1", "phone", marked(0), 10.0, None, now_wall=T0)
    for i in range(301, 400):
        recorder.push(marked(i // 6 % 50), i / 30)
    frames, fps = read_clip(ev.clip_path)  # type: ignore[arg-type]
    assert (fps, len(frames)) == (5, 31)
    assert [mark_of(f) for f in frames] == [i % 50 for i in range(35, 66)]


def test_flush_writes_a_waiting_clip_with_what_it_has(tmp_path: Path, marked: Marked) -> None:
    recorder = EvidenceRecorder(EvidenceConfig(), tmp_path)
    _run(recorder, marked, 0, 51)
    ev = recorder.snapshot("a1", "phone", marked(0), 10.0, None, now_wall=T0)
    _run(recorder, marked, 51, 56)  # post-roll up to t = 11.0 only
    recorder.flush(11.0)
    frames, _ = read_clip(ev.clip_path)  # type: ignore[arg-type]
    assert [mark_of(f) for f in frames] == [i % 50 for i in range(35, 56)]
    assert recorder.pending == {}


def test_a_snapshot_before_any_frame_gets_its_clip_from_the_post_roll(tmp_path: Path, marked: Marked) -> None:
    recorder = EvidenceRecorder(EvidenceConfig(), tmp_path)
    ev = recorder.snapshot("a1", "phone", marked(0), 0.0, None, now_wall=T0)
    _run(recorder, marked, 0, 16)
    frames, _ = read_clip(ev.clip_path)  # type: ignore[arg-type]
    assert len(frames) == 16


def test_clips_beyond_the_pending_limit_are_left_out(tmp_path: Path, marked: Marked) -> None:
    recorder = EvidenceRecorder(EvidenceConfig(), tmp_path)
    _run(recorder, marked, 0, 20)
    evs = [recorder.snapshot(f"a{i}", "phone", marked(0), 4.0, now_wall=T0) for i in range(MAX_PENDING_CLIPS + 1)]
    assert [e.clip_path is None for e in evs] == [False] * MAX_PENDING_CLIPS + [True]


def test_clips_off_means_no_clip(tmp_path: Path, marked: Marked) -> None:
    recorder = EvidenceRecorder(EvidenceConfig(clip=False), tmp_path)
    _run(recorder, marked, 0, 51)
    assert recorder.snapshot("a1", "phone", marked(0), 10.0, now_wall=T0).clip_path is None
    _run(recorder, marked, 51, 80)
    assert _files(tmp_path) == ["20251009/a1.jpg"]


@pytest.mark.parametrize("alert_id", ["../../escape", "/etc/x", "a/b", ".."])
def test_a_bad_alert_id_writes_nothing_anywhere(tmp_path: Path, marked: Marked, alert_id: str) -> None:
    recorder = EvidenceRecorder(EvidenceConfig(), tmp_path / "evidence")
    with pytest.raises(EvidenceError, match="is not 1-64 letters"):
        recorder.snapshot(alert_id, "phone", marked(0), 0.0, now_wall=T0)
    assert _files(tmp_path) == []


def test_an_alert_id_is_used_once(tmp_path: Path, marked: Marked) -> None:
    recorder = EvidenceRecorder(EvidenceConfig(), tmp_path)
    first = recorder.snapshot("phone-1", "phone", marked(1), 0.0, now_wall=T0)
    data = first.path.read_bytes()
    with pytest.raises(EvidenceError, match=r"evidence for alert phone-1 already exists .* alert ids must be unique"):
        recorder.snapshot("phone-1", "phone", marked(2), 5.0, now_wall=T0)
    assert first.path.read_bytes() == data, "the evidence whose digest was sent is untouched"


def test_a_bad_snapshot_image_names_the_alert(tmp_path: Path) -> None:
    recorder = EvidenceRecorder(EvidenceConfig(), tmp_path)
    with pytest.raises(EvidenceError, match=r"snapshot image of alert a1 must be an RGB uint8 array .* got uint16"):
        recorder.snapshot("a1", "phone", np.zeros((4, 4, 3), np.uint16), 0.0, now_wall=T0)


def test_an_unwritable_directory_is_an_evidence_error_and_the_recorder_goes_on(tmp_path: Path, marked: Marked) -> None:
    blocker = tmp_path / "evidence"
    blocker.write_text("a file where the evidence directory should be")
    recorder = EvidenceRecorder(EvidenceConfig(), blocker)
    _run(recorder, marked, 0, 20)
    with pytest.raises(EvidenceError, match=rf"cannot write {blocker}/20251009/a1.jpg: Not a directory"):
        recorder.snapshot("a1", "phone", marked(0), 4.0, now_wall=T0)
    _run(recorder, marked, 20, 60)  # no clip was scheduled for the failed snapshot: nothing to fail
    assert recorder.clip_errors == 0 and _files(tmp_path) == ["evidence"]
    blocker.unlink()
    assert recorder.snapshot("a2", "phone", marked(0), 12.0, now_wall=T0).path.is_file()


def test_disabled_evidence_keeps_nothing(tmp_path: Path, marked: Marked) -> None:
    recorder = EvidenceRecorder(EvidenceConfig(enabled=False), tmp_path)
    _run(recorder, marked, 0, 10)
    assert len(recorder.ring) == 0
    with pytest.raises(EvidenceError, match="evidence is disabled"):
        recorder.snapshot("a1", "phone", marked(0), 1.0, now_wall=T0)
    assert _files(tmp_path) == []


FULL_DISK = textwrap.dedent(
    """
    import json, logging, resource, sys
    from pathlib import Path
    import cv2
    from edge_app.evidence import EvidenceConfig, EvidenceError, EvidenceRecorder
    from edge_app.vision.preprocess import read_rgb

    logging.basicConfig(format="%(levelname)s %(message)s")
    directory, photo, limit = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    image = cv2.resize(read_rgb(photo), (640, 480))
    recorder = EvidenceRecorder(EvidenceConfig(), directory)
    for i in range(51):
        recorder.push(image, i * 0.2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    result = {}
    try:
        result["snapshot"] = recorder.snapshot("a1", "phone", image, 10.0, None, now_wall=1760000000.0).bytes
    except EvidenceError as exc:
        result["error"] = str(exc)
    for i in range(51, 70):
        recorder.push(image, i * 0.2)
    result.update(written=recorder.clips_written, clip_errors=recorder.clip_errors)
    print(json.dumps(result))
    """
)


def _full_disk(directory: Path, limit: int) -> tuple[dict[str, object], str]:
    """Run the recorder in a child whose files may not grow past ``limit`` bytes (RLIMIT_FSIZE, unprivileged).

    Returns what the child printed and its log (stderr).
    """
    done = subprocess.run([sys.executable, "-c", FULL_DISK, str(directory), str(photo("bus.jpg")), str(limit)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result, done.stderr


def test_a_full_disk_snapshot_is_an_evidence_error_and_leaves_no_file(tmp_path: Path) -> None:
    result, _ = _full_disk(tmp_path, limit=8192)
    assert result == {"error": f"cannot write {tmp_path}/20251009/a1.jpg: File too large",
                      "written": 0, "clip_errors": 0}
    assert _files(tmp_path) == []


def test_a_full_disk_clip_is_logged_and_leaves_no_file(tmp_path: Path) -> None:
    result, log = _full_disk(tmp_path, limit=400_000)  # the ~90 kB snapshot fits, the ~5 MB clip does not
    assert isinstance(result["snapshot"], int) and result["snapshot"] < 400_000
    assert (result["written"], result["clip_errors"]) == (0, 1)
    assert f"WARNING evidence: clip of alert a1 not kept: clip {tmp_path}/20251009/a1.avi is incomplete" in log
    assert _files(tmp_path) == ["20251009/a1.jpg"]


def test_enforce_applies_retention_then_quota_to_what_was_recorded(tmp_path: Path, marked: Marked) -> None:
    recorder = EvidenceRecorder(EvidenceConfig(clip=False, retention_days=7), tmp_path)
    for day in range(10):  # one snapshot a day, 9 days ago .. today
        recorder.snapshot(f"d{day}", "phone", marked(day), float(day), now_wall=T0 - (9 - day) * DAY)
    assert recorder.enforce(T0) == 2  # d0 and d1 are more than 7 days old; d2 is exactly 7
    left = sorted(p.stem for p in tmp_path.rglob("*.jpg"))
    assert left == [f"d{day}" for day in range(2, 10)]
    size = sum(p.stat().st_size for p in tmp_path.rglob("*.jpg"))
    recorder.config = EvidenceConfig(clip=False, quota_mb=(size - 1) / 1e6)
    assert recorder.enforce(T0) == 1
    assert sorted(p.stem for p in tmp_path.rglob("*.jpg")) == [f"d{day}" for day in range(3, 10)], "oldest went"


def test_ring_memory_per_frame_at_camera_sizes(marked: Marked, tmp_path: Path) -> None:
    """The figures the report quotes: JPEG bytes per ring frame at 640x480 and 1280x720 of a real photo."""
    for (w, h), limit in [((640, 480), 150_000), ((1280, 720), 350_000)]:
        recorder = EvidenceRecorder(EvidenceConfig(), tmp_path)
        for i in range(60):
            recorder.push(cv2.resize(marked(i % 50), (w, h)), i * 0.2)
        assert len(recorder.ring) == 51
        per_frame = recorder.ring.nbytes / len(recorder.ring)
        assert per_frame < limit and per_frame < w * h * 3 / 10


def test_background_clips_are_written_off_the_loop_and_drained_on_close(tmp_path: Path) -> None:
    recorder = EvidenceRecorder(EvidenceConfig(pre_seconds=1, post_seconds=1), tmp_path, background=True)
    image = np.full((120, 160, 3), 90, np.uint8)
    for i in range(10):
        recorder.push(image, i * 0.2)
    evidence = recorder.snapshot("bg1", "phone", image, 2.0, now_wall=1_700_000_000.0)
    for i in range(11, 30):
        recorder.push(image, i * 0.2)
    recorder.flush(6.0)
    recorder.close()
    assert evidence.clip_path is not None and evidence.clip_path.is_file()
    assert recorder.clips_written == 1 and recorder.clip_errors == 0


def _blocked(recorder: EvidenceRecorder) -> threading.Event:
    """Hold the recorder's ring encoder until the returned event is set (its queue then fills up)."""
    release = threading.Event()
    encode = recorder.ring.encode

    def held(image: np.ndarray, t: float) -> JpegFrame:
        release.wait(10)
        return encode(image, t)

    recorder.ring.encode = held  # type: ignore[method-assign]
    return release


def test_background_ring_holds_the_same_frames_as_a_synchronous_one(tmp_path: Path, marked: Marked) -> None:
    synchronous = EvidenceRecorder(EvidenceConfig(clip=False), tmp_path / "sync")
    background = EvidenceRecorder(EvidenceConfig(clip=False), tmp_path / "bg", background=True)
    for i in range(40):  # 10 fps in, 5 fps kept
        synchronous.push(marked(i % 50), i * 0.1)
        background.push(marked(i % 50), i * 0.1)
        if i % 4 == 3:  # never more queued than the encoder may hold, however slow this machine is
            assert background.drain()
    assert [(f.t, f.jpeg) for f in background.ring.since(0)] == [(f.t, f.jpeg) for f in synchronous.ring.since(0)]
    assert len(background.ring) == 20 and background.ring_dropped == 0
    background.close()
    assert not any(t.name == "invigil-ring" for t in threading.enumerate())


def test_a_behind_encoder_drops_ring_frames_without_blocking_the_caller(tmp_path: Path, marked: Marked) -> None:
    recorder = EvidenceRecorder(EvidenceConfig(clip=False), tmp_path, background=True)
    release = _blocked(recorder)
    for i in range(MAX_QUEUED_FRAMES + 3):
        recorder.push(marked(i), i * 0.2)  # returns at once although nothing is encoded
    assert recorder.ring_dropped == 3 and len(recorder.ring) == 0
    release.set()
    assert recorder.drain()
    assert [mark_of(decode_jpeg(f.jpeg)) for f in recorder.ring.since(0)] == list(range(MAX_QUEUED_FRAMES))
    recorder.close()


def test_a_clip_gets_the_frames_still_queued_when_its_alert_starts(tmp_path: Path, marked: Marked) -> None:
    recorder = EvidenceRecorder(EvidenceConfig(pre_seconds=1, post_seconds=1), tmp_path, background=True)
    release = _blocked(recorder)
    _run(recorder, marked, 0, 4)  # 0.0 .. 0.6 s, none encoded yet
    evidence = recorder.snapshot("q1", "phone", marked(3), 0.6, now_wall=T0)
    release.set()
    assert recorder.drain()  # the queued frames joined the clip; the rest fit in the queue
    _run(recorder, marked, 4, 10)  # up to 1.8 s: past the post-roll end at 1.6 s
    recorder.flush(1.8)
    recorder.close()
    assert evidence.clip_path is not None
    frames, _ = read_clip(evidence.clip_path)
    assert [mark_of(f) for f in frames] == list(range(9))  # 0.0 .. 1.6 s at 5 fps


def test_a_clock_restart_empties_the_ring_even_when_its_frame_was_dropped(tmp_path: Path, marked: Marked) -> None:
    recorder = EvidenceRecorder(EvidenceConfig(clip=False), tmp_path, background=True)
    release = _blocked(recorder)
    for i in range(MAX_QUEUED_FRAMES):
        recorder.push(marked(i), 100 + i * 0.2)
    recorder.push(marked(10), 0.0)  # the capture clock restarted; the queue is full, so this frame is dropped
    release.set()
    assert recorder.drain()
    recorder.push(marked(11), 0.2)
    assert recorder.drain()
    assert [f.t for f in recorder.ring.since(0)] == [0.2]
    recorder.close()


def test_a_push_allowed_to_wait_keeps_its_frame_once_the_encoder_catches_up(tmp_path: Path, marked: Marked) -> None:
    recorder = EvidenceRecorder(EvidenceConfig(clip=False), tmp_path, background=True)
    release = _blocked(recorder)
    _run(recorder, marked, 0, MAX_QUEUED_FRAMES)  # the queue is full
    slots, asked = recorder._slots, threading.Event()

    class Watched:  # says when the push starts waiting for room
        def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
            asked.set()
            return slots.acquire(blocking, timeout)

        def release(self) -> None:
            slots.release()

    recorder._slots = Watched()  # type: ignore[assignment]
    waiting = threading.Thread(target=recorder.push, args=(marked(MAX_QUEUED_FRAMES), MAX_QUEUED_FRAMES * 0.2, 30.0))
    waiting.start()
    assert asked.wait(30)
    release.set()
    waiting.join(30)
    assert recorder.drain() and recorder.ring_dropped == 0
    assert [mark_of(decode_jpeg(f.jpeg)) for f in recorder.ring.since(0)] == list(range(MAX_QUEUED_FRAMES + 1))
    recorder.close()
