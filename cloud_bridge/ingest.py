"""Ingest one device event: verify it (signature, device, chain), store it once, or dead-letter it.

Whatever arrives ends as ``stored``, ``duplicate`` (the same event id again: the device re-sent it after a
reconnect) or ``dead_letter`` with a reason code and detail; ``Ingestor.handle`` raises only the database's
own errors (it is away or busy: nothing to blame on the message, which the consumer retries). Several
workers may share the load (an MQTT shared subscription); the event id's uniqueness in the database keeps
them from storing an event twice.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from cloud_bridge.chain import advance, flag_gaps, is_redelivery, neighbour_flag, refused_gap
from cloud_bridge.dead_letters import DeadLetters
from cloud_bridge.store import Store
from cloud_bridge.store.models import Device, EventRow
from edge_app.protocol import DEVICE_ID, PREFIX, Event, ProtocolError, decode_event

log = logging.getLogger(__name__)
Also = Callable[[Session, Event, "str | None"], Any]
EVENT_TOPIC = re.compile(rf"^{re.escape(PREFIX)}/dev/([a-z0-9][a-z0-9-]{{2,13}})/event$")


@dataclass(frozen=True)
class Outcome:
    status: Literal["stored", "duplicate", "dead_letter"]
    reason: str | None = None  # dead letter reason, or the chain flag of a stored event
    event: Event | None = None
    extra: Any = None  # what ``also`` returned


class Ingestor:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time,
                 dead_letters: DeadLetters | None = None) -> None:
        self.store, self.clock = store, clock
        self.dead_letters = dead_letters or DeadLetters(store, clock)
        self._keys: dict[str, tuple[str, Ed25519PublicKey]] = {}  # device -> (PEM, parsed key)

    def register(self, device_id: str, public_pem: str, password_hash: str | None = None) -> None:
        """Add a device (or replace its key and MQTT password hash) in the registry."""
        if not DEVICE_ID.fullmatch(device_id):
            raise ValueError(f"device id {device_id!r} must be 3-14 of a-z, 0-9 and '-'")
        try:
            key = load_pem_public_key(public_pem.encode())
        except ValueError as exc:
            raise ValueError(f"device {device_id}: the public key is not PEM: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"device {device_id}: the public key must be Ed25519")
        with self.store.session() as session, session.begin():
            device = session.get(Device, device_id)
            if device is None:
                session.add(Device(device_id=device_id, public_key=public_pem, last_seq=0,
                                   status="unknown", mqtt_password_hash=password_hash))
            else:
                device.public_key = public_pem
                if password_hash is not None:
                    device.mqtt_password_hash = password_hash

    def devices(self) -> list[Device]:
        with self.store.session() as session:
            return list(session.scalars(select(Device).order_by(Device.device_id)).all())

    def handle(self, topic: str, payload: bytes, also: Also | None = None) -> Outcome:
        """Verify and store one event; ``also(session, event, flag)`` runs inside the storing transaction (the
        proctor alert) and its result is the outcome's ``extra``."""
        try:
            return self._handle(topic, payload, also)
        except DBAPIError:  # the database is away or busy: not this message's fault; the consumer retries it
            raise
        except Exception as exc:  # one bad message never stops the consumer
            log.exception("ingest of a message on %s failed", topic)
            return self._dead(topic, payload, "internal", f"{type(exc).__name__}: {exc}")

    def dead_letter(self, topic: str, payload: bytes, reason: str, detail: str) -> None:
        """Count a rejected message with the reason and keep it (capped; sampled while its source floods)."""
        self.dead_letters.add(topic, payload, reason, detail)

    def _dead(self, topic: str, payload: bytes, reason: str, detail: str) -> Outcome:
        self.dead_letter(topic, payload, reason, detail)
        return Outcome("dead_letter", reason)

    def public_key(self, device_id: str) -> Ed25519PublicKey | None:
        """A registered device's key (parsed once per PEM), or None for an unknown device."""
        with self.store.session() as session:
            device = session.get(Device, device_id)
            return self._key(device_id, device.public_key) if device is not None else None

    def _key(self, device_id: str, pem: str) -> Ed25519PublicKey:
        cached = self._keys.get(device_id)
        if cached is None or cached[0] != pem:
            key = load_pem_public_key(pem.encode())
            assert isinstance(key, Ed25519PublicKey)  # register() admits no other kind
            cached = self._keys[device_id] = (pem, key)
        return cached[1]

    def _handle(self, topic: str, payload: bytes, also: Also | None) -> Outcome:
        match = EVENT_TOPIC.match(topic)
        if match is None:
            return self._dead(topic, payload, "bad_topic", f"not an event topic: {topic[:200]!r}")
        device_id = match.group(1)
        try:
            with self.store.locked_session() as session, session.begin():  # SQLite: one writer at a time
                device = session.get(Device, device_id, with_for_update=True)  # PostgreSQL: one device's in turn
                if device is None:
                    raise ProtocolError("unknown_device", f"device {device_id} is not registered")
                event = decode_event(payload, self._key(device_id, device.public_key))
                if event.device_id != device_id:
                    raise ProtocolError("wrong_device", f"event names device {event.device_id} but came on "
                                        f"{device_id}'s topic")
                if is_redelivery(session, event, payload):  # the same bytes again; other bytes: reused_id
                    return Outcome("duplicate", event=event)
                flag = neighbour_flag(session, event, payload)
                now = self.clock()
                if event.refused is not None and flag != "replayed":  # alerts the unit could not store
                    flag = flag or refused_gap(session, event, now)
                    log.warning("device %s: %d alerts refused by its outbox (%s)", device_id, event.refused[0],
                                event.refused_reason)
                device.last_seen = now
                session.add(EventRow(
                    event_id=event.event_id, device_id=device_id, seq=event.seq, time_ms=event.time_ms,
                    kind=event.kind, phase=event.phase, severity=event.severity, confidence=event.confidence,
                    alert_id=event.alert_id or event.event_id, evidence=event.evidence, flag=flag,
                    prev_hash=event.prev_hash, payload=payload, received_at=now))
                advance(session, device, event.seq)
                extra = also(session, event, flag) if also is not None else None
        except ProtocolError as exc:  # rolled back; kept as a dead letter
            return self._dead(topic, payload, exc.reason, exc.detail)
        except IntegrityError:  # another worker stored the same event id first: the same bytes, or a reused id
            try:
                with self.store.session() as session:
                    if is_redelivery(session, event, payload):
                        return Outcome("duplicate", event=event)
            except ProtocolError as exc:
                return self._dead(topic, payload, exc.reason, exc.detail)
            return self._dead(topic, payload, "internal", "a uniqueness conflict, but no event stored under its id")
        return Outcome("stored", flag, event, extra)

    def flag_gaps(self, gap_after: float = 30.0) -> list[tuple[str, int, int]]:
        """Flag sequence holes that lasted ``gap_after`` seconds (events lost on the way); each is logged once."""
        with self.store.locked_session() as session, session.begin():
            found = flag_gaps(session, self.clock(), gap_after)
        for device_id, first, last in found:
            log.warning("device %s: events %d..%d never arrived", device_id, first, last)
        return found
