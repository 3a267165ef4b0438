"""Dead letters that a flood cannot turn into a full disk: capped payloads, sampled per source, all counted.

Every rejected message is counted in ``dead_letter_tallies`` (per source and reason: how many, how many
bytes, how many kept). It is kept as a ``dead_letters`` row while its source (the device its topic names;
``-`` when it names none) has tokens left in its bucket (``keep_burst`` at once, refilled at
``keep_per_second``), so one unit flooding garbage keeps a sample while every other source keeps all of
its own. A kept payload holds its first ``max_payload_bytes`` bytes, with the size and SHA-256 of the
whole; every valid message is smaller than the default cap, so a replay gets it whole.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from cloud_bridge.store import Store
from cloud_bridge.store.models import DeadLetter, DeadLetterTally
from edge_app.protocol import PREFIX

DEVICE_TOPIC = re.compile(rf"^{re.escape(PREFIX)}/dev/([a-z0-9][a-z0-9-]{{2,13}})/")
MAX_BUCKETS = 10_000  # sources remembered at once; a full bucket is forgotten first (it has nothing to remember)


def source_of(topic: str) -> str:
    """The device a topic names, or ``-``."""
    match = DEVICE_TOPIC.match(topic)
    return match.group(1) if match else "-"


def _text(value: str, limit: int) -> str:
    """``value`` cut to ``limit`` characters with NUL written ``\\x00``: a PostgreSQL text column refuses NUL,
    and a message the database can never take would otherwise be retried for ever."""
    return value[:limit].replace("\x00", "\\x00")


class DeadLetters:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time, *, max_payload_bytes: int = 4096,
                 keep_per_second: float = 1.0, keep_burst: int = 100) -> None:
        self.store, self.clock = store, clock
        self.max_payload_bytes, self.rate, self.burst = max_payload_bytes, keep_per_second, keep_burst
        self._buckets: dict[str, tuple[float, float]] = {}  # source -> (tokens, when)
        self._lock = threading.Lock()

    def add(self, topic: str, payload: bytes, reason: str, detail: str, session: Session | None = None) -> bool:
        """Count a rejected message and keep it unless its source is flooding; whether it was kept. In
        ``session``'s transaction when given (a batch's), else in one of its own."""
        if session is None:
            with self.store.session() as own, own.begin():
                return self.add(topic, payload, reason, detail, own)
        now, source = self.clock(), source_of(topic)
        keep = self._take(source, now)
        reason = reason[:24]
        if keep:
            session.add(DeadLetter(topic=_text(topic, 1000), payload=payload[:self.max_payload_bytes], reason=reason,
                                   detail=_text(detail, 2000), received_at=now, size=len(payload),
                                   sha256=hashlib.sha256(payload).hexdigest()))
        dialect = session.get_bind().dialect.name
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        statement = insert(DeadLetterTally).values(source=source, reason=reason, count=1, kept=int(keep),
                                                   bytes=len(payload), first_at=now, last_at=now)
        session.execute(statement.on_conflict_do_update(
            index_elements=["source", "reason"],
            set_={"count": DeadLetterTally.count + 1, "kept": DeadLetterTally.kept + int(keep),
                  "bytes": DeadLetterTally.bytes + len(payload), "last_at": now}))
        return keep

    def _take(self, source: str, now: float) -> bool:
        with self._lock:
            tokens, when = self._buckets.get(source, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + max(0.0, now - when) * self.rate)
            if len(self._buckets) >= MAX_BUCKETS:
                self._forget_full(now)
            if tokens < 1:
                self._buckets[source] = (tokens, now)
                return False
            self._buckets[source] = (tokens - 1, now)
            return True

    def _forget_full(self, now: float) -> None:
        for source, (tokens, when) in list(self._buckets.items()):
            if tokens + (now - when) * self.rate >= self.burst:
                del self._buckets[source]
