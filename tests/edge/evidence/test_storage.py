"""Evidence files: safe names, crash-safe writes that leave nothing half-written, retention and quota."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import pytest

from edge_app.atomic import STALE_TEMP
from edge_app.evidence import EvidenceError
from edge_app.evidence.clip import write_clip
from edge_app.evidence.jpeg import encode_jpeg
from edge_app.evidence.ring import JpegFrame
from edge_app.evidence.storage import check_alert_id, enforce, evidence_path, write_atomic, write_bytes_atomic

DAY = 86400.0
T0 = 1_760_000_000.0  # 2025-10-09 08:53:20 UTC
ROOT = Path(__file__).resolve().parents[3]


def _all_files(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    "alert_id", ["01JAB3XK4Z9QW8R7M6N5P4S3T2", "0f8e3c1a-6b2d-4e5f-9a7b-1c2d3e4f5a6b", "phone-12", "A_1"]
)
def test_ulids_uuids_and_simple_ids_are_accepted(alert_id: str) -> None:
    assert check_alert_id(alert_id) == alert_id


@pytest.mark.parametrize("alert_id", ["", "../escape", "a/b", "a\\b", ".hidden", "-x", "a b", "é", "x" * 65, None, 7])
def test_ids_that_could_escape_or_hide_are_refused(alert_id: object) -> None:
    with pytest.raises(EvidenceError, match="is not 1-64 letters, digits"):
        check_alert_id(alert_id)


def test_evidence_path_is_a_utc_day_folder(tmp_path: Path) -> None:
    assert evidence_path(tmp_path, "a1", ".jpg", T0) == tmp_path / "20251009" / "a1.jpg"
    assert evidence_path(tmp_path, "a1", ".avi", T0 + 16 * 3600) == tmp_path / "20251010" / "a1.avi"


def test_write_bytes_atomic_writes_the_bytes_with_the_given_mtime(tmp_path: Path) -> None:
    final = tmp_path / "20251009" / "a1.jpg"
    write_bytes_atomic(final, b"\xff\xd8jpeg", T0)
    assert final.read_bytes() == b"\xff\xd8jpeg"
    assert final.stat().st_mtime == T0
    assert _all_files(tmp_path) == ["20251009/a1.jpg"]


def test_a_failure_half_way_leaves_neither_temp_nor_final_file(tmp_path: Path) -> None:
    final = tmp_path / "20251009" / "a1.jpg"

    def fill(temp: Path) -> None:
        temp.write_bytes(b"\xff\xd8 half a jpeg")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(EvidenceError, match=rf"cannot write {final}: No space left on device"):
        write_atomic(final, fill, T0)
    assert _all_files(tmp_path) == []


def test_a_failed_rewrite_keeps_the_previous_whole_file(tmp_path: Path) -> None:
    final = tmp_path / "a1.jpg"
    write_bytes_atomic(final, b"whole", T0)

    def fill(temp: Path) -> None:
        temp.write_bytes(b"par")
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    with pytest.raises(EvidenceError, match="Input/output error"):
        write_atomic(final, fill, T0)
    assert final.read_bytes() == b"whole" and _all_files(tmp_path) == ["a1.jpg"]


def test_a_file_size_limit_is_a_clear_error_and_leaves_nothing(tmp_path: Path) -> None:
    """A real write cut short by RLIMIT_FSIZE (unprivileged) in a child process, like a full SD card."""
    script = textwrap.dedent(
        """
        import resource, sys
        from pathlib import Path
        from edge_app.evidence import EvidenceError
        from edge_app.evidence.storage import write_bytes_atomic
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        try:
            write_bytes_atomic(Path(sys.argv[1]) / "20251009" / "a1.jpg", b"x" * 100_000, 0.0)
        except EvidenceError as exc:
            print(exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == f"cannot write {tmp_path}/20251009/a1.jpg: File too large"
    assert _all_files(tmp_path) == []


def _evidence(directory: Path, name: str, size: int, mtime: float) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (mtime, mtime))
    return path


def test_retention_deletes_only_files_older_than_it(tmp_path: Path) -> None:
    _evidence(tmp_path, "20251001/old.jpg", 10, T0 - 8 * DAY)
    _evidence(tmp_path, "20251001/old.avi", 10, T0 - 8 * DAY)
    _evidence(tmp_path, "20251003/edge.jpg", 10, T0 - 6.9 * DAY)
    _evidence(tmp_path, "20251009/new.jpg", 10, T0)
    assert enforce(tmp_path, T0, retention_seconds=7 * DAY, quota_bytes=1e9) == 2
    assert _all_files(tmp_path) == ["20251003/edge.jpg", "20251009/new.jpg"]
    assert not (tmp_path / "20251001").exists(), "an emptied day folder is removed"


def test_quota_deletes_oldest_first_clip_before_its_snapshot(tmp_path: Path) -> None:
    for i in range(5):
        _evidence(tmp_path, f"20251009/a{i}.jpg", 100, T0 + i)
        _evidence(tmp_path, f"20251009/a{i}.avi", 1000, T0 + i)
    assert enforce(tmp_path, T0 + 10, retention_seconds=7 * DAY, quota_bytes=3400) == 3
    newest = [f"20251009/a{i}.{suffix}" for i in (2, 3, 4) for suffix in ("avi", "jpg")]
    assert _all_files(tmp_path) == ["20251009/a1.jpg", *newest]
    assert enforce(tmp_path, T0 + 10, retention_seconds=7 * DAY, quota_bytes=3400) == 0, "already under quota"


def test_leftover_temp_files_are_removed_and_foreign_files_left_alone(tmp_path: Path) -> None:
    _evidence(tmp_path, "20251009/.a1.0badc0de.tmp.jpg", 50, T0)
    _evidence(tmp_path, "20251009/.a2.0badc0de.tmp.avi", 50, T0)
    foreign = [
        _evidence(tmp_path, "20251009/notes.txt", 10**6, T0 - 30 * DAY),
        _evidence(tmp_path, "photos/a1.jpg", 10**6, T0 - 30 * DAY),
        _evidence(tmp_path, "top.jpg", 10**6, T0 - 30 * DAY),
        _evidence(tmp_path, "20251009/bad name.jpg", 10**6, T0 - 30 * DAY),
    ]
    assert enforce(tmp_path, T0, retention_seconds=DAY, quota_bytes=1) == 2
    assert all(p.exists() for p in foreign)


def test_a_missing_directory_removes_nothing(tmp_path: Path) -> None:
    assert enforce(tmp_path / "absent", T0, retention_seconds=DAY, quota_bytes=1) == 0


class SweepingFrame(JpegFrame):
    """A ring frame that runs the retention sweep when the clip writer reads it: the clip's temp file is
    open and half written at that moment, as when the loop sweeps while the clip worker writes."""

    directory: ClassVar[Path] = Path()
    sweeps: ClassVar[list[tuple[list[str], int]]] = []  # (the temp files there, how many files it removed)

    def __getattribute__(self, name: str) -> object:
        if name == "jpeg" and not SweepingFrame.sweeps:
            temps = sorted(p.name for p in SweepingFrame.directory.rglob(".*.tmp.*"))
            SweepingFrame.sweeps.append((temps, enforce(SweepingFrame.directory, T0, DAY, 1e9)))
        return super().__getattribute__(name)


def test_the_sweep_leaves_a_clip_being_written_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    marked: Callable[..., np.ndarray]) -> None:
    monkeypatch.setattr(SweepingFrame, "directory", tmp_path)
    monkeypatch.setattr(SweepingFrame, "sweeps", [])
    _evidence(tmp_path, f"20251009/.old.{dead_pid()}-0badc0de.tmp.avi", 50, T0)  # a crashed writer's
    frames = []
    for i in range(10):
        jpeg = encode_jpeg(cv2.cvtColor(marked(i), cv2.COLOR_RGB2BGR), 80)
        frames.append((SweepingFrame if i == 5 else JpegFrame)(T0 + i * 0.2, jpeg, 640, 480))
    final = tmp_path / "20251009" / "a1.avi"
    assert write_clip(final, frames, fps=5, quality=80, mtime=T0) == 10  # whole: its temp file was not taken
    ((temps, removed),) = SweepingFrame.sweeps
    assert len(temps) == 2 and removed == 1  # the sweep ran mid-clip and took only the crashed writer's file
    assert final.is_file() and _all_files(tmp_path) == ["20251009/a1.avi"]


def dead_pid() -> int:
    """The id of a process that has ended."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          timeout=60, check=True)
    return int(done.stdout)


def test_only_abandoned_temp_files_are_swept(tmp_path: Path) -> None:
    live = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        names = {"dead": f".a1.{dead_pid()}-0badc0de.tmp.jpg", "live": f".a2.{live.pid}-0badc0de.tmp.avi",
                 "ours": f".a3.{os.getpid()}-0badc0de.tmp.jpg", "unnamed": ".a4.0badc0de.tmp.jpg"}
        for name in names.values():
            _evidence(tmp_path, f"20251009/{name}", 50, T0)
        assert enforce(tmp_path, T0, retention_seconds=DAY, quota_bytes=1e9) == 3
        assert _all_files(tmp_path) == [f"20251009/{names['live']}"]  # another process still writing it
    finally:
        assert live.stdin is not None
        live.stdin.close()
        live.wait(timeout=30)
    assert enforce(tmp_path, T0, retention_seconds=DAY, quota_bytes=1e9) == 1  # once that process has ended


def test_a_leftover_whose_process_id_is_taken_again_is_swept_once_it_has_lain_idle(tmp_path: Path) -> None:
    """After a power cut the writer's id may name a new process (here this test's parent, alive): the
    leftover goes once it has not changed for STALE_TEMP seconds; a file written a moment ago stays."""
    name = f"20251009/.a1.{os.getppid()}-0badc0de.tmp.avi"
    _evidence(tmp_path, name, 50, T0)
    assert enforce(tmp_path, T0 + STALE_TEMP - 60, retention_seconds=7 * DAY, quota_bytes=1e9) == 0
    assert _all_files(tmp_path) == [name]
    assert enforce(tmp_path, T0 + STALE_TEMP + 60, retention_seconds=7 * DAY, quota_bytes=1e9) == 1
    assert _all_files(tmp_path) == []


def test_a_date_before_the_clock_was_ever_set_is_not_an_age(tmp_path: Path) -> None:
    """A snapshot dated 1970 (written before the network set the clock) is not 55 years old: it is kept and
    dated now, so retention counts from here."""
    early = _evidence(tmp_path, "19700104/a1.jpg", 10, 3 * DAY)
    assert enforce(tmp_path, T0, retention_seconds=7 * DAY, quota_bytes=1e9) == 0
    assert early.stat().st_mtime == T0
    assert enforce(tmp_path, T0 + 8 * DAY, retention_seconds=7 * DAY, quota_bytes=1e9) == 1
