"""Evidence retention when the wall clock is stepped (a Pi without a real-time clock sets it after boot):
nothing is purged because of a step, and files written before it are re-dated by it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edge_app.evidence import EvidenceConfig, EvidenceRecorder
from edge_app.evidence.dating import FLOOR, EvidenceClock, wall_age

T0 = 1_760_000_000.0  # 2025-10-09 UTC
DAY = 86400.0
YEAR = 365 * DAY
BOOT = 86_400.0 * 3  # 1970-01-04: a Pi's clock before the network sets it

Marked = Callable[..., np.ndarray]


class Clocks:
    """The unit's two clocks: a wall clock that can be stepped, a monotonic one that only runs."""

    def __init__(self, wall: float) -> None:
        self.wall, self.mono = wall, 1000.0

    def run(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds

    def clock(self) -> EvidenceClock:
        return EvidenceClock(lambda: self.wall, lambda: self.mono)


def recorder(tmp_path: Path, clocks: Clocks, retention_days: float = 7) -> EvidenceRecorder:
    config = EvidenceConfig(clip=False, retention_days=retention_days)
    return EvidenceRecorder(config, tmp_path, clock=clocks.clock())


def earlier(directory: Path, name: str, mtime: float) -> Path:
    """A snapshot an earlier run left, dated ``mtime``."""
    path = directory / "20251001" / f"{name}.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8\xff" + bytes(100))
    os.utime(path, (mtime, mtime))
    return path


def test_a_clock_set_at_boot_purges_nothing_and_redates_what_was_written_before(
        tmp_path: Path, marked: Marked) -> None:
    clocks = Clocks(BOOT)
    evidence = recorder(tmp_path, clocks)
    first = evidence.snapshot("a1", "phone", marked(1), 0.0).path
    assert first.parent.name == "19700104" and first.stat().st_mtime == BOOT
    assert evidence.enforce() == 0  # the clock reads 1970: no file has an age yet
    clocks.run(60)
    clocks.wall = T0  # the network sets the clock: 55 years forward
    assert evidence.enforce() == 0 and first.exists()
    assert first.stat().st_mtime == T0 - 60  # dated when it was really written
    clocks.run(8 * DAY)
    assert evidence.enforce() == 1 and not first.exists()  # retention counts from then


def test_a_clock_jumping_years_ahead_purges_nothing(tmp_path: Path, marked: Marked) -> None:
    clocks = Clocks(T0)
    old = earlier(tmp_path, "old", T0 - 2 * DAY)
    evidence = recorder(tmp_path, clocks)
    ours = evidence.snapshot("a1", "phone", marked(1), 0.0).path
    clocks.run(3600)
    clocks.wall += 20 * YEAR  # a bad time source
    assert evidence.enforce() == 0 and old.exists() and ours.exists()
    assert ours.stat().st_mtime == T0 + 20 * YEAR  # re-dated by the step
    clocks.run(5.5 * DAY)  # 7.5 days after the old file was written, 5.5 after ours: by the clocks that held
    assert evidence.enforce() == 1 and not old.exists() and ours.exists()
    clocks.run(2 * DAY)
    assert evidence.enforce() == 1 and not ours.exists()


def test_without_steps_retention_is_by_the_dates(tmp_path: Path, marked: Marked) -> None:
    clocks = Clocks(T0)
    old, recent = earlier(tmp_path, "old", T0 - 8 * DAY), earlier(tmp_path, "recent", T0 - 6 * DAY)
    evidence = recorder(tmp_path, clocks)
    ours = evidence.snapshot("a1", "phone", marked(1), 0.0).path
    assert evidence.enforce() == 1 and not old.exists() and recent.exists()
    clocks.run(1.5 * DAY)
    assert evidence.enforce() == 1 and not recent.exists() and ours.exists()


def test_a_file_whose_date_cannot_be_right_is_dated_now_once_the_clock_is_set(tmp_path: Path) -> None:
    clocks = Clocks(BOOT)
    unset, ahead = earlier(tmp_path, "unset", BOOT - DAY), earlier(tmp_path, "ahead", T0 + YEAR)
    evidence = recorder(tmp_path, clocks)
    assert evidence.enforce() == 0 and unset.stat().st_mtime == BOOT - DAY  # no date to trust yet
    clocks.wall = T0
    assert evidence.enforce() == 0 and unset.stat().st_mtime == T0 and ahead.stat().st_mtime == T0
    clocks.run(7.5 * DAY)
    assert evidence.enforce() == 2  # retention counted from when the dates were found wrong


def test_the_quota_applies_whatever_the_clock(tmp_path: Path, marked: Marked) -> None:
    clocks = Clocks(BOOT)
    evidence = recorder(tmp_path, clocks)
    for i in range(3):
        evidence.snapshot(f"a{i}", "phone", marked(i), float(i))
        clocks.run(1)
    size = sum(p.stat().st_size for p in tmp_path.rglob("*.jpg"))
    evidence.config = EvidenceConfig(clip=False, quota_mb=(size - 1) / 1e6)
    assert evidence.enforce() == 1 and sorted(p.stem for p in tmp_path.rglob("*.jpg")) == ["a1", "a2"]


def test_wall_age() -> None:
    assert wall_age(T0, T0 - DAY) == DAY and wall_age(T0, T0 - DAY, skipped=DAY) == 0
    assert wall_age(FLOOR - 1, FLOOR - 2) is None and wall_age(T0, FLOOR - 1) is None
    assert wall_age(T0, T0 + 3600) is None and wall_age(T0, T0 + 30) == -30  # ahead: by more than drift
