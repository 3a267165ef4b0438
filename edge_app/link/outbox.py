"""The device's outbox: every accepted event survives broker outages, restarts and power cuts.

SQLite in WAL mode with ``synchronous=FULL``: ``accept`` returns only after the event is on the SD card.
The sequence number and the hash chain live in the same file and advance in the same transaction as the
event, so a power cut can never leave a gap or a fork in the chain. Rows are deleted by ``receipt``, when
the bridge's signed receipt says it has stored every event up to a sequence number (end to end: a broker
can acknowledge and still lose a message), or by ``ack`` for a link run without receipts (no bridge).
Events refused while the disk is full are counted in a file reserved for that (``<outbox>.refused``,
edge_app/link/refusals.py), so the signed report of them survives a restart before space returns.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from edge_app.link.refusals import RefusalLog
from edge_app.link.refusals import Refused as Refused
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
# the number of the last refusal record reported (edge_app/link/refusals.py); made by the first report, so an
# older outbox opens on a full disk without writing
REPORTED = "CREATE TABLE IF NOT EXISTS refusals (id INTEGER PRIMARY KEY CHECK (id = 1), reported INTEGER NOT NULL)"

# Builds the signed payload of event number ``seq`` whose previous-event hash is ``prev_hash``:
# returns (event_id, topic, payload).
MakeEvent = Callable[[int, str], tuple[str, str, bytes]]


# Builds the event that reports ``Refused`` as event number ``seq`` (as MakeEvent does).
MakeReport = Callable[[int, str, Refused], tuple[str, str, bytes]]


def _refusal_reason(exc: sqlite3.DatabaseError) -> str:
    full = getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(exc)
    return "disk_full" if full else "store_error"


class OutboxError(RuntimeError):
    """The outbox cannot take or keep events (full disk, corrupt or unwritable file); names the file."""


class Outbox:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            marked = self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'refusals'").fetchone()
            reported = self._db.execute("SELECT reported FROM refusals").fetchone() if marked else None
        except (sqlite3.DatabaseError, OSError) as exc:
            raise OutboxError(f"outbox {path}: cannot open: {exc}") from None
        self._refused = RefusalLog(path.with_name(path.name + ".refused"), int(reported[0]) if reported else 0)

    def accept(self, make: MakeEvent, now: float | None = None) -> tuple[str, int, bytes]:
        """Number, chain, sign and store one event atomically; returns (event_id, seq, payload). When the file
        cannot take it (a full disk), OutboxError: nothing stored is touched, and the refusal is counted for
        :meth:`report_refused`."""
        when = time.time() if now is None else now
        with self._lock:
            try:
                return self._store(make, when)
            except sqlite3.DatabaseError as exc:
                refused = self._refused.add(when, _refusal_reason(exc))
                raise OutboxError(f"outbox {self.path}: {refused.reason.replace('_', ' ')}: event not stored "
                                  f"({refused.count} refused since {time.ctime(refused.first)}): {exc}") from None

    def refused(self) -> Refused | None:
        """Events refused since the last report (kept in a file reserved for them: the outbox could take nothing;
        a restart keeps them)."""
        with self._lock:
            return self._refused.current

    def report_refused(self, make: MakeReport, now: float | None = None) -> tuple[str, int, bytes] | None:
        """Store the event that reports the refusals (built by ``make(seq, prev_hash, refused)``), then forget
        them; None when nothing was refused; OutboxError (not counted) while the file still takes nothing."""
        with self._lock:
            refused = self._refused.current
            if refused is None:
                return None
            try:
                accepted = self._store(lambda seq, prev: make(seq, prev, refused), time.time() if now is None else now,
                                       self._refused.number)
            except sqlite3.DatabaseError as exc:
                raise OutboxError(f"outbox {self.path}: still cannot store ({exc}): {refused.count} refused "
                                  "events not reported yet") from None
            self._refused.reported()
            return accepted

    def _store(self, make: MakeEvent, when: float, reported: int | None = None) -> tuple[str, int, bytes]:
        """Store one event; with ``reported``, record that refusal record as reported in the same transaction."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            last_seq, last_hash = self._db.execute("SELECT last_seq, last_hash FROM chain").fetchone()
            seq = last_seq + 1
            event_id, topic, payload = make(seq, last_hash)
            self._db.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?)", (event_id, seq, topic, payload, when))
            self._db.execute("UPDATE chain SET last_seq = ?, last_hash = ?", (seq, chain_hash(payload)))
            if reported is not None:
                self._db.execute(REPORTED)
                self._db.execute("INSERT OR REPLACE INTO refusals (id, reported) VALUES (1, ?)", (reported,))
            self._db.execute("COMMIT")
        except BaseException:
            # SQLite ends the transaction itself on some errors (a full disk): a ROLLBACK then fails with "cannot
            # rollback - no transaction is active" and would hide the real error
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.DatabaseError):  # the first error is the one to report
                    self._db.execute("ROLLBACK")
            raise
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

    def unreceipted(self, after_seq: int = 0, limit: int = 100) -> list[tuple[int, str, str, bytes]]:
        """(seq, event_id, topic, payload) above ``after_seq`` still waiting for the bridge's receipt, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT seq, event_id, topic, payload FROM events WHERE seq > ? ORDER BY seq "
                                    "LIMIT ?", (after_seq, limit)).fetchall()
        return [(int(r[0]), r[1], r[2], bytes(r[3])) for r in rows]

    def receipt(self, upto_seq: int) -> int:
        """The bridge has stored every event up to ``upto_seq``: forget them; how many rows went."""
        with self._lock:
            try:
                return self._db.execute("DELETE FROM events WHERE seq <= ?", (upto_seq,)).rowcount
            except sqlite3.DatabaseError as exc:
                raise OutboxError(f"outbox {self.path}: receipted events not deleted: {exc}") from None

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
            self._refused.close()
