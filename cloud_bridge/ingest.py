"""Ingest one device event: verify it (signature, device, chain), store it once, or dead-letter it.

``Ingestor.handle`` never raises: whatever arrives ends as ``stored``, ``duplicate`` (the same event id
again: the device re-sent it after a reconnect) or ``dead_letter`` with a reason code and detail. Several
workers may share the load (an MQTT shared subscription); the event id's uniqueness in the database keeps
them from storing an event twice.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from cloud_bridge.store import Store
from cloud_bridge.store.models import DeadLetter, Device, EventRow
from edge_app.protocol import PREFIX, ChainVerifier, Event, ProtocolError, decode_event

log = logging.getLogger(__name__)
EVENT_TOPIC = re.compile(rf"^{re.escape(PREFIX)}/dev/([a-z0-9][a-z0-9-]{{2,13}})/event$")


@dataclass(frozen=True)
class Outcome:
    status: Literal["stored", "duplicate", "dead_letter"]
    reason: str | None = None  # dead letter reason, or the chain flag of a stored event
    event: Event | None = None


class Ingestor:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store, self.clock = store, clock

    def register(self, device_id: str, public_pem: str) -> None:
        """Add a device (or replace its key) in the registry."""
        if not isinstance(load_pem_public_key(public_pem.encode()), Ed25519PublicKey):
            raise ValueError(f"device {device_id}: the public key must be Ed25519")
        with self.store.session() as session, session.begin():
            device = session.get(Device, device_id)
            if device is None:
                session.add(Device(device_id=device_id, public_key=public_pem, last_seq=0, last_hash="",
                                   status="unknown"))
            else:
                device.public_key = public_pem

    def handle(self, topic: str, payload: bytes) -> Outcome:
        try:
            return self._handle(topic, payload)
        except Exception as exc:  # one bad message never stops the consumer
            log.exception("ingest of a message on %s failed", topic)
            return self._dead(topic, payload, "internal", f"{type(exc).__name__}: {exc}")

    def _dead(self, topic: str, payload: bytes, reason: str, detail: str) -> Outcome:
        with self.store.session() as session, session.begin():
            session.add(DeadLetter(topic=topic, payload=payload, reason=reason, detail=detail[:2000],
                                   received_at=self.clock()))
        return Outcome("dead_letter", reason)

    def _handle(self, topic: str, payload: bytes) -> Outcome:
        match = EVENT_TOPIC.match(topic)
        if match is None:
            return self._dead(topic, payload, "bad_topic", f"not an event topic: {topic[:200]!r}")
        device_id = match.group(1)
        with self.store.session() as session:
            device = session.get(Device, device_id)
            public_pem = device.public_key if device else None
        if public_pem is None:
            return self._dead(topic, payload, "unknown_device", f"device {device_id} is not registered")
        try:
            key = load_pem_public_key(public_pem.encode())
            assert isinstance(key, Ed25519PublicKey)  # register() admits no other kind
            event = decode_event(payload, key)
        except ProtocolError as exc:
            return self._dead(topic, payload, exc.reason, exc.detail)
        if event.device_id != device_id:
            return self._dead(topic, payload, "wrong_device",
                              f"event names device {event.device_id} but came on {device_id}'s topic")
        try:
            with self.store.session() as session, session.begin():
                if session.scalar(select(EventRow.id).where(EventRow.event_id == event.event_id)) is not None:
                    return Outcome("duplicate", event=event)
                device = session.get(Device, device_id, with_for_update=True)
                assert device is not None
                verifier = ChainVerifier(device.last_seq, device.last_hash)
                flag = verifier.check(event, payload)
                device.last_seq, device.last_hash = verifier.last_seq, verifier.last_hash
                device.last_seen = self.clock()
                session.add(EventRow(
                    event_id=event.event_id, device_id=device_id, seq=event.seq, time_ms=event.time_ms,
                    kind=event.kind, phase=event.phase, severity=event.severity, confidence=event.confidence,
                    alert_id=event.alert_id or event.event_id, evidence=event.evidence, flag=flag,
                    payload=payload, received_at=self.clock()))
        except IntegrityError:  # another worker stored the same event id first
            return Outcome("duplicate", event=event)
        return Outcome("stored", flag, event)
