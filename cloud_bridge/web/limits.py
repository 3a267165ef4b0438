"""What one caller may ask of the HTTP side: request body sizes per route, a token bucket per caller, and a
cap on requests that wait for news (long polls, event streams) so they never take every server thread."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

JSON_OVERHEAD = 65_536  # a session body beside its photo: ids and a rules section
SMALL_BODY = 16_384  # every other route: no body worth the name


def body_limits(upload: int, photo: int) -> dict[str, int]:
    """The largest body each route may send, by endpoint; ``"*"`` for every other route.

    The enrolled photo travels base64-encoded inside the session's JSON (4 bytes per 3)."""
    return {"api.create_session": 4 * math.ceil(photo / 3) + JSON_OVERHEAD, "api.upload_evidence": upload,
            "*": SMALL_BODY}


def largest_body(limits: dict[str, int]) -> int:
    """The server-wide limit (waitress refuses a larger body from its headers, before reading it)."""
    return max(limits.values())


class RateLimiter:
    """A token bucket per key: on average ``rate`` requests a second, bursts of up to ``burst``.

    Keys are kept least-recently-used first; past ``max_keys`` the oldest is forgotten (a forgotten key
    starts again with a full bucket, as an idle one would have)."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 10_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate, self.burst, self.clock, self.max_keys = rate, float(burst), clock, max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Spend one request of ``key``: 0.0 if it may go on, else the seconds until it may."""
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return wait


def retry_after(wait: float) -> str:
    """A Retry-After value (whole seconds, at least 1) for a wait in seconds."""
    return str(max(1, math.ceil(wait)))


class Waiting:
    """At most ``slots`` requests wait for news at once; the others are answered at once."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._free = threading.BoundedSemaphore(slots)

    def enter(self) -> bool:
        return self._free.acquire(blocking=False)

    def leave(self) -> None:
        self._free.release()
