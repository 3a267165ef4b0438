"""Evidence ages that hold when the wall clock is stepped.

A Raspberry Pi has no real-time clock: it boots at a stale time (or 1970) and steps to the network's time
when it has it, forward by minutes or by decades. Evidence files are still dated by the wall clock (their
day folder and mtime, what a person reading the card expects), but retention must not purge because of a
step, so an age is taken from what holds:

- a file this process wrote: the monotonic clock since it was written. When a step is seen, these files
  are re-dated (mtime) by it, so the next run finds them dated right;
- a file of an earlier run: the wall clock less every forward step this process has seen, so a jump of
  years purges nothing. A backward step is taken as it comes (it only delays purges);
- no age at all while the clock reads before :data:`FLOOR` (never set), nor for a file dated before it or
  ahead of now: such a file is re-dated to now once the clock is set, so retention takes it that much later.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

FLOOR = 1_704_067_200.0  # 2024-01-01 UTC: no evidence of this software is older; a clock before it was never set
STEP = 60.0  # seconds (wall - monotonic) may move between two reads before it is a step, not drift


def wall_age(now_wall: float, mtime: float, skipped: float = 0.0) -> float | None:
    """Seconds since ``mtime`` by the wall clock less ``skipped`` (forward steps seen); None when the clock
    was never set or the date is before :data:`FLOOR` or ahead of now."""
    if now_wall < FLOOR or mtime < FLOOR or mtime > now_wall + STEP:
        return None
    return now_wall - mtime - skipped


class EvidenceClock:
    """The recorder's wall and monotonic clocks (both injectable), watching for steps between reads.
    Thread-safe: the loop stamps snapshots, the clip writer registers clips."""

    def __init__(self, wall: Callable[[], float] = time.time, mono: Callable[[], float] = time.monotonic) -> None:
        self._wall, self._mono = wall, mono
        self._lock = threading.Lock()
        self._offset: float | None = None  # wall - monotonic at the last read
        self.skipped = 0.0  # forward steps seen from a set clock (seconds)
        self._ours: dict[Path, float] = {}  # files this process wrote -> the monotonic time they are dated at

    def now(self) -> tuple[float, float]:
        """(wall, monotonic) now. A step since the last read re-dates this process's files."""
        with self._lock:
            wall, mono = self._wall(), self._mono()
            offset = wall - mono
            if self._offset is not None and abs(offset - self._offset) > STEP:
                self._stepped(offset - self._offset, wall, offset)
            self._offset = offset
            return wall, mono

    def _stepped(self, delta: float, wall: float, offset: float) -> None:
        before = wall - delta  # what the clock would read now without the step
        if delta > 0 and before >= FLOOR:
            self.skipped += delta
        log.warning("evidence: the wall clock stepped by %+.0f s; evidence ages hold on the monotonic clock",
                    delta)
        for path, dated in list(self._ours.items()):
            self._redate(path, dated + offset)

    def _redate(self, path: Path, mtime: float) -> None:
        try:
            os.utime(path, (mtime, mtime))
        except FileNotFoundError:
            self._ours.pop(path, None)
        except OSError as exc:
            log.warning("evidence: cannot re-date %s: %s", path, exc.strerror or exc)

    def wrote(self, path: Path, dated: float) -> None:
        """``path`` was written by this process, dated at monotonic time ``dated`` (a clip: its snapshot's);
        re-dated now if a step came since."""
        with self._lock:
            self._ours[path] = dated
            if self._offset is None:
                return
            with contextlib.suppress(OSError):
                if abs(path.stat().st_mtime - (dated + self._offset)) > STEP:
                    self._redate(path, dated + self._offset)

    def age(self, path: Path, mtime: float, now: tuple[float, float]) -> float | None:
        """Seconds since ``path`` (dated ``mtime``) was written, at ``now`` (from :meth:`now`); None when it
        cannot be told."""
        wall, mono = now
        with self._lock:
            dated = self._ours.get(path)
            skipped = self.skipped
        return mono - dated if dated is not None else wall_age(wall, mtime, skipped)

    def forget_missing(self) -> None:
        """Stop tracking this process's files that are gone (removed by retention or quota)."""
        with self._lock:
            for path in [p for p in self._ours if not p.exists()]:
                del self._ours[path]
