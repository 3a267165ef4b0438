"""Holding media time to the wall clock, for files and scenarios played as if they were live.

The clock and sleep are injectable so tests can pace frames on a fake clock without waiting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class Pacer:
    """Maps media time 0 to the wall-clock moment of the first ``start()``; shared by a video and its audio."""

    def __init__(self, clock: Clock = time.monotonic, sleep: Sleep = time.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        self._origin: float | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Fix media time 0 to now, unless already started (by this stream or a paired one)."""
        with self._lock:
            if self._origin is None:
                self._origin = self._clock()

    def elapsed(self) -> float:
        """Media time the wall clock has reached (starts the pacer if needed)."""
        self.start()
        assert self._origin is not None
        return self._clock() - self._origin

    def wait_until(self, media_t: float) -> None:
        """Sleep until the wall clock reaches ``media_t``; returns at once when it already has."""
        delay = media_t - self.elapsed()
        if delay > 0:
            self._sleep(delay)
