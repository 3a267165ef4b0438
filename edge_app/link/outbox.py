"""The device's outbox: every accepted event survives broker outages, restarts and power cuts.

SQLite in WAL mode with ``synchronous=FULL``: ``accept`` returns only after the event is on the SD card.
The sequence number and the hash chain live in the same file and advance in the same transaction as the
event, so a power cut can never leave a gap or a fork in the chain. Rows are deleted by ``ack`` only,
which the MQTT link calls on the broker's PUBACK.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from edge_app.protocol import chain_hash

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    accepted_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS chain (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq INTEGER NOT NULL,
    last_hash TEXT NOT NULL
);
INSERT OR IGNORE INTO chain (id, last_seq, last_hash) VALUES (1, 0, '');
"""

# Builds the signed payload of event number ``seq`` whose previous-event hash is ``prev_hash``:
# returns (event_id, topic, payload).
MakeEvent = Callable[[int, str], tuple[str, str, bytes]]


class OutboxError(RuntimeError):
    """The outbox cannot take or keep events (full disk, corrupt or unwritable file); names the file."""


class Outbox:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise OutboxError(f"outbox {path}: cannot open: {exc}") from None

    def accept(self, make: MakeEvent, now: float | None = None) -> tuple[str, int, bytes]:
        """Number, chain, sign and store one event atomically; returns (event_id, seq, payload)."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    last_seq, last_hash = self._db.execute("SELECT last_seq, last_hash FROM chain").fetchone()
                    seq = last_seq + 1
                    event_id, topic, payload = make(seq, last_hash)
                    self._db.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?)",
                                     (event_id, seq, topic, payload, time.time() if now is None else now))
                    self._db.execute("UPDATE chain SET last_seq = ?, last_hash = ?", (seq, chain_hash(payload)))
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except sqlite3.DatabaseError as exc:
                raise OutboxError(f"outbox {self.path}: event not stored: {exc}") from None
        return event_id, seq, payload

    def put_raw(self, event_id: str, topic: str, payload: bytes) -> None:
        """Store an already-built payload under the next sequence number (tests and replays)."""
        self.accept(lambda seq, _prev: (event_id, topic, payload))

    def pending(self, limit: int = 100) -> list[tuple[str, str, bytes]]:
        """(event_id, topic, payload) not yet acknowledged by the broker, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT event_id, topic, payload FROM events ORDER BY seq LIMIT ?",
                                    (limit,)).fetchall()
        return [(r[0], r[1], bytes(r[2])) for r in rows]

    def ack(self, event_id: str) -> None:
        """The broker has the event (PUBACK): forget it."""
        with self._lock:
            self._db.execute("DELETE FROM events WHERE event_id = ?", (event_id,))

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def chain_state(self) -> tuple[int, str]:
        """(last sequence number, hash of the last event) ever accepted, acknowledged or not."""
        with self._lock:
            last_seq, last_hash = self._db.execute("SELECT last_seq, last_hash FROM chain").fetchone()
        return int(last_seq), str(last_hash)

    def close(self) -> None:
        with self._lock:
            self._db.close()
