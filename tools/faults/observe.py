"""What the fault suite counts: the proctor's view of the alerts topic, the bridge's store, the unit's outbox.

The ground truth of what a unit accepted is its outbox's chain: every sequence number from 1 to the last one
is an event the outbox stored (numbering and storing are one transaction), whether or not it is still there.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_app.protocol import proctor_topic


class ProctorLog:
    """A proctor on the alerts topic at QoS 2 (exactly once from the bridge) with a persistent session (the
    broker queues for it while it is away): every message it receives, by the event id it carries."""

    def __init__(self, port: int, password: str, exam: str, username: str = "proctor") -> None:
        self.topic = proctor_topic(exam)
        self.copies: dict[str, int] = {}  # event id -> copies received
        self.alerts: dict[str, set[Any]] = {}  # event id -> the alert ids its copies carried (one, or a double)
        self.other = 0  # messages about no event (device_offline raised by the bridge)
        self.subscribed = threading.Event()
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=username, protocol=MQTTProtocolVersion.MQTTv5)
        self.client.username_pw_set(username, password)
        self.client.on_connect = lambda c, *_a: c.subscribe(self.topic, qos=2)  # exactly once from the bridge
        self.client.on_subscribe = lambda *_a: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 2)
        session = Properties(PacketTypes.CONNECT)
        session.SessionExpiryInterval = 3600
        self.client.connect_async("127.0.0.1", port, keepalive=5, clean_start=False, properties=session)
        self.client.loop_start()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        with contextlib.suppress(UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            alert = json.loads(message.payload)
            event = alert.get("event")
            with self._lock:
                if isinstance(event, str):
                    self.copies[event] = self.copies.get(event, 0) + 1
                    self.alerts.setdefault(event, set()).add(alert.get("id"))
                else:
                    self.other += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.copies)

    def doubles(self) -> int:
        """Events that became two different proctor alerts (not copies of one alert: a real double)."""
        with self._lock:
            return sum(len(ids) > 1 for ids in self.alerts.values())

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _read(path: Path, query: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of a read-only query on a SQLite file another process writes (empty when it does not exist yet)."""
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as db:
        return db.execute(query, args).fetchall()


def accepted(outbox: Path) -> tuple[int, int]:
    """(events the unit's outbox accepted, events still waiting in it for a receipt)."""
    chain = _read(outbox, "SELECT last_seq FROM chain")
    waiting = _read(outbox, "SELECT COUNT(*) FROM events")
    return (int(chain[0][0]) if chain else 0), (int(waiting[0][0]) if waiting else 0)


def stored(db: Path, device: str) -> dict[int, list[str]]:
    """The bridge's event rows of ``device``: sequence number -> event ids stored under it."""
    out: dict[int, list[str]] = {}
    for seq, event_id in _read(db, "SELECT seq, event_id FROM events WHERE device_id = ?", (device,)):
        out.setdefault(int(seq), []).append(str(event_id))
    return out


def gaps(db: Path, device: str) -> list[tuple[str, int]]:
    """The gaps the bridge still holds open for ``device``: (reason, events lost). A hole whose events
    arrived later (filled) lost nothing; a partly filled one lost what has not arrived."""
    query = "SELECT reason, count - filled FROM gaps WHERE device_id = ? AND filled_at IS NULL ORDER BY id"
    return [(str(r), int(c)) for r, c in _read(db, query, (device,))]


def flags(db: Path, device: str) -> dict[str, int]:
    """Stored events of ``device`` by chain flag (gap, broken_chain, replayed, disk_full, ...)."""
    return {str(f): int(n) for f, n in _read(db, "SELECT flag, COUNT(*) FROM events WHERE device_id = ? AND flag "
                                             "IS NOT NULL GROUP BY flag", (device,))}


@dataclass(frozen=True)
class Tally:
    """One fault's outcome for one unit."""

    accepted: int  # events the unit's outbox accepted (sequence numbers 1..accepted)
    stored: int  # of those, sequence numbers with exactly one stored event
    delivered: int  # of the stored events, those the proctor received (once or more)
    extra_rows: int  # stored rows beyond one per sequence number
    extra_copies: int  # proctor copies beyond one per event (the same alert again: at-least-once delivery)
    missing_stored: int  # accepted sequence numbers with no stored event
    missing_delivered: int  # stored events the proctor never received
    gaps: tuple[tuple[str, int], ...]  # (reason, events lost) recorded by the bridge
    flags: tuple[tuple[str, int], ...]  # stored events by chain flag
    waiting: int  # events still in the unit's outbox (no receipt yet)

    @classmethod
    def count(cls, outbox: Path, db: Path, device: str, proctor: dict[str, int]) -> Tally:
        total, waiting = accepted(outbox)
        rows = stored(db, device)
        ids = [ids[0] for seq, ids in rows.items() if 1 <= seq <= total and len(ids) == 1]
        all_ids = [event_id for ids in rows.values() for event_id in ids]
        return cls(accepted=total, stored=len(ids), delivered=sum(proctor.get(i, 0) > 0 for i in ids),
                   extra_rows=sum(len(ids) - 1 for ids in rows.values()),
                   extra_copies=sum(max(0, proctor.get(i, 0) - 1) for i in all_ids),
                   missing_stored=sum(1 for seq in range(1, total + 1) if seq not in rows),
                   missing_delivered=sum(1 for i in all_ids if i not in proctor),
                   gaps=tuple(gaps(db, device)), flags=tuple(sorted(flags(db, device).items())), waiting=waiting)

    @property
    def duplicates(self) -> int:
        return self.extra_rows + self.extra_copies

    @property
    def complete(self) -> bool:
        """Every accepted event stored and delivered (once or more), and receipted."""
        return self.missing_stored == 0 and self.missing_delivered == 0 and self.waiting == 0 and self.accepted > 0


def unsent(db: Path) -> int:
    """Messages in the bridge's outbox not yet acknowledged by the broker (more proctor copies may follow)."""
    rows = _read(db, "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")
    return int(rows[0][0]) if rows else 0
