"""From the loop's alert messages to signed protocol events in the outbox."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_app.link.outbox import Outbox, OutboxError, Refused
from edge_app.protocol import MAX_REFUSED, Event, device_topic, encode_event, evidence_digest, new_event_id


class EventWriter:
    """Turns each ``alert`` message of the session loop into a signed event accepted by the outbox.

    Start events get a fresh id; their update and end events carry it in ``a``. Boxes become shares of
    the frame. Call :meth:`write` as (part of) the loop's emit function.
    """

    def __init__(self, device_id: str, key: Ed25519PrivateKey, outbox: Outbox, frame_size: tuple[int, int]) -> None:
        self.device_id, self.key, self.outbox, self.frame_size = device_id, key, outbox, frame_size
        self.topic = device_topic(device_id, "event")
        self.starts: dict[str, str] = {}  # the loop's alert id -> its start event id

    def write(self, message: dict[str, Any], now_ms: int | None = None) -> str | None:
        """Accept one alert message; returns the event id (None for messages that are not alerts)."""
        if message.get("type") != "alert":
            return None
        ms = int(time.time() * 1000) if now_ms is None else now_ms
        event_id = new_event_id(ms)
        phase = message["phase"]
        box = None
        if message.get("box"):
            w, h = self.frame_size
            x1, y1, x2, y2 = message["box"]
            box = (x1 / w, y1 / h, x2 / w, y2 / h)
        evidence = message.get("evidence") or {}
        start_id = None if phase == "start" else self.starts.get(message["id"])
        if phase != "start" and start_id is None:
            return None  # its start was written by an earlier process: the bridge ends it by session

        def build(seq: int, prev_hash: str) -> tuple[str, str, bytes]:
            event = Event(event_id=event_id, device_id=self.device_id, seq=seq, time_ms=ms, kind=message["kind"],
                          phase=phase, severity=message["severity"], confidence=float(message["confidence"]),
                          prev_hash=prev_hash, box=box,
                          evidence=evidence_digest(evidence["sha256"]) if evidence.get("sha256") else None,
                          alert_id=start_id, keyword=message.get("keyword") if phase == "start" else None)
            return event_id, self.topic, encode_event(event, self.key)

        if self.outbox.refused() is not None:  # space is back (or not: then this event is refused and counted too)
            with contextlib.suppress(OutboxError):
                self.report_refused(ms)
        self.outbox.accept(build, ms / 1000)
        if phase == "start":
            self.starts[message["id"]] = event_id
        elif phase == "end":
            self.starts.pop(message["id"], None)
        return event_id

    def report_refused(self, now_ms: int | None = None) -> str | None:
        """Once the outbox takes events again, the signed ``events_refused`` event that tells the bridge how many
        alerts it refused, when and why (a gap the bridge shows with its reason); its id, or None when nothing
        was refused. OutboxError while the outbox still takes nothing."""
        ms = int(time.time() * 1000) if now_ms is None else now_ms
        event_id = new_event_id(ms)

        def build(seq: int, prev_hash: str, refused: Refused) -> tuple[str, str, bytes]:
            event = Event(event_id=event_id, device_id=self.device_id, seq=seq, time_ms=ms, kind="events_refused",
                          phase="start", severity="warning", confidence=1.0, prev_hash=prev_hash,
                          refused=(min(refused.count, MAX_REFUSED), int(refused.first), int(refused.last)),
                          refused_reason=refused.reason)
            return event_id, self.topic, encode_event(event, self.key)

        return event_id if self.outbox.report_refused(build, ms / 1000) is not None else None
