"""Ingest device events: verify each (signature, device, chain), store it once, or dead-letter it.

Whatever arrives ends as ``stored``, ``duplicate`` (the same event id again: the device re-sent it after a
reconnect) or ``dead_letter`` with a reason code and detail; ``Ingestor.handle`` and ``handle_batch`` raise
only the database's own errors (it is away or busy: nothing to blame on the messages, which the consumer
retries). A batch is one transaction: one commit (and its fsync) and a handful of statements for all of its
events instead of for each, which is what makes ingest fast; its events are checked as if stored one by one
in its order. Several workers may share the load (an MQTT shared subscription); the event id's uniqueness
in the database keeps them from storing an event twice.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from cloud_bridge.chain import (
    Known,
    Locked,
    advance_all,
    fill_gaps,
    flag_gaps,
    is_redelivery,
    lock_devices,
    neighbour_flag,
    read_batch,
    redelivery,
    refused_gap,
    save_devices,
)
from cloud_bridge.dead_letters import DeadLetters, source_of
from cloud_bridge.signatures import SodiumKey
from cloud_bridge.store import Store
from cloud_bridge.store.bulk import insert_events
from cloud_bridge.store.models import Device, Gap
from edge_app.protocol import DEVICE_ID, PREFIX, Event, ProtocolError, decode_event

log = logging.getLogger(__name__)
# runs in the storing transaction with the events being stored and their chain flags (the proctor alerts); one
# result per event, handed back as its outcome's ``extra``
Also = Callable[[Session, list[tuple[Event, "str | None"]]], Sequence[Any]]
Message = tuple[str, bytes]  # topic, payload
EVENT_TOPIC = re.compile(rf"^{re.escape(PREFIX)}/dev/([a-z0-9][a-z0-9-]{{2,13}})/event$")


@dataclass(frozen=True)
class Outcome:
    status: Literal["stored", "duplicate", "dead_letter"]
    reason: str | None = None  # dead letter reason, or the chain flag of a stored event
    event: Event | None = None
    extra: Any = None  # what ``also`` returned


class GapNotices(Protocol):
    """Who hears of lost events as they are found and filled (the proctors of paired units)."""

    def record_gaps(self, session: Session, found: Sequence[Gap], filled: Sequence[Gap]) -> int:
        """Add notices of gaps ``found`` and ``filled`` inside the caller's transaction; how many were added."""

    def notify(self) -> None:
        """The notices are committed."""


class Ingestor:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time,
                 dead_letters: DeadLetters | None = None, gap_notices: GapNotices | None = None) -> None:
        self.store, self.clock = store, clock
        self.dead_letters = dead_letters or DeadLetters(store, clock)
        self.gap_notices = gap_notices
        self._keys: dict[str, tuple[str, SodiumKey]] = {}  # device -> (PEM, parsed key)

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
        """Verify and store one event; ``also(session, [(event, flag)])`` runs inside the storing transaction
        (the proctor alert) and its result is the outcome's ``extra``."""
        return self.handle_batch([(topic, payload)], also)[0]

    def handle_batch(self, messages: Sequence[Message], also: Also | None = None) -> list[Outcome]:
        """Verify and store a batch of ``(topic, payload)`` events in one transaction (one commit); each one's
        outcome, in order. A message that fails its checks is dead-lettered in that transaction and the others
        are stored; when the transaction fails for any other reason than the database (a bug, ``also`` raising,
        a conflict with another worker), each message is handled again on its own, so no message pays for
        another's. Raises only the database's errors (it is away or busy): then nothing of the batch is kept."""
        if not messages:
            return []
        try:
            return self._batch(messages, also)
        except IntegrityError:  # another worker stored one of these event ids first
            if len(messages) == 1:
                return [self._conflict(*messages[0])]
        except DBAPIError:  # the database is away or busy: not these messages' fault; the consumer retries them
            raise
        except Exception as exc:  # one bad message never stops the consumer
            if len(messages) == 1:
                log.exception("ingest of a message on %s failed", messages[0][0])
                return [self._dead(*messages[0], "internal", f"{type(exc).__name__}: {exc}")]
            log.warning("a batch of %d events failed (%s: %s); handling each on its own", len(messages),
                        type(exc).__name__, exc)
        return [self.handle_batch([message], also)[0] for message in messages]

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
            return self._key(device_id, device.public_key).key if device is not None else None

    def _key(self, device_id: str, pem: str) -> SodiumKey:
        cached = self._keys.get(device_id)
        if cached is None or cached[0] != pem:
            key = load_pem_public_key(pem.encode())
            assert isinstance(key, Ed25519PublicKey)  # register() admits no other kind
            cached = self._keys[device_id] = (pem, SodiumKey(key))
        return cached[1]

    def _decode(self, device_id: str, pem: str, payload: bytes) -> Event | ProtocolError:
        try:
            event = decode_event(payload, self._key(device_id, pem))
        except ProtocolError as exc:
            return exc
        if event.device_id != device_id:
            return ProtocolError("wrong_device", f"event names device {event.device_id} but came on {device_id}'s "
                                 "topic")
        return event

    def _batch(self, messages: Sequence[Message], also: Also | None) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(messages)
        rejects: list[tuple[int, str, str]] = []  # message index, reason, detail
        topics: dict[int, str] = {}  # message index -> device
        for index, (topic, _payload) in enumerate(messages):
            match = EVENT_TOPIC.match(topic)
            if match is None:
                rejects.append((index, "bad_topic", f"not an event topic: {topic[:200]!r}"))
            else:
                topics[index] = match.group(1)
        # signatures checked before the lock with the keys known (again inside it if a key has changed meanwhile)
        early = {index: (cached[0], self._decode(device_id, cached[0], messages[index][1]))
                 for index, device_id in topics.items() if (cached := self._keys.get(device_id)) is not None}
        now = self.clock()
        stored: list[tuple[int, Event, str | None]] = []  # message index, event, chain flag
        with self.store.write_transaction() as session:  # SQLite: one writer at a time
            devices = lock_devices(session, set(topics.values()))  # PostgreSQL: these devices in turn
            events = self._checked(messages, topics, early, devices, rejects)
            payloads, known = read_batch(session, events.values())
            rows: list[dict[str, Any]] = []
            for index, event in events.items():
                payload = messages[index][1]
                try:
                    if redelivery(payloads.get(event.event_id), event, payload):  # the same bytes again
                        outcomes[index] = Outcome("duplicate", event=event)
                        continue
                except ProtocolError as exc:  # other bytes under a stored id
                    rejects.append((index, exc.reason, exc.detail))
                    continue
                flag = neighbour_flag(known, event, payload)
                if event.refused is not None and flag != "replayed":  # alerts the unit could not store
                    flag = flag or refused_gap(session, event, now)
                    log.warning("device %s: %d alerts refused by its outbox (%s)", event.device_id,
                                event.refused[0], event.refused_reason)
                payloads[event.event_id] = payload  # later events of the batch see it as stored
                known.setdefault((event.device_id, event.seq), (payload, event.prev_hash))
                rows.append(_row(event, payload, flag, now))
                stored.append((index, event, flag))
            insert_events(session.connection(), rows)  # no ORM objects: COPY, or one executemany
            filled = fill_gaps(session, [(event.device_id, event.seq) for _i, event, _f in stored  # a resend
                                         if event.seq <= devices[event.device_id].last_seq], now)
            self._advance(session, devices, events.values(), known, (event for _i, event, _f in stored), now)
            extras = also(session, [(event, flag) for _index, event, flag in stored]) if also and stored else []
            # after the late events' own alerts: they arrived, then nothing was lost
            told = self.gap_notices.record_gaps(session, [], filled) if filled and self.gap_notices else 0
            for number, (index, event, flag) in enumerate(stored):
                outcomes[index] = Outcome("stored", flag, event, extras[number] if also else None)
            for index, reason, detail in sorted(rejects, key=lambda r: (source_of(messages[r[0]][0]), r[1])):
                self.dead_letters.add(*messages[index], reason, detail, session=session)  # tallies in one order
                outcomes[index] = Outcome("dead_letter", reason)
        for gap in filled:
            log.info("device %s: events %s..%s arrived after all: gap filled", gap.device_id, gap.first_seq,
                     gap.last_seq)
        if told and self.gap_notices is not None:
            self.gap_notices.notify()
        done = [outcome for outcome in outcomes if outcome is not None]
        assert len(done) == len(messages), "every message has an outcome"
        return done

    def _checked(self, messages: Sequence[Message], topics: dict[int, str],
                 early: dict[int, tuple[str, Event | ProtocolError]], devices: dict[str, Locked],
                 rejects: list[tuple[int, str, str]]) -> dict[int, Event]:
        """The batch's events (by message index) of registered devices, signed by the key in the device's row:
        decoded before the lock (``early``, with the PEM used) or now, when the key has changed meanwhile or was
        not known then. The others go to ``rejects`` (a revoked unit's too, signed or not)."""
        events: dict[int, Event] = {}
        for index, device_id in topics.items():
            device = devices.get(device_id)
            if device is None:
                rejects.append((index, "unknown_device", f"device {device_id} is not registered"))
                continue
            if device.revoked:
                rejects.append((index, "revoked", f"device {device_id} is revoked"))
                continue
            pem, result = early.get(index, (None, None))
            if pem != device.public_key or result is None:
                result = self._decode(device_id, device.public_key, messages[index][1])
            if isinstance(result, ProtocolError):
                rejects.append((index, result.reason, result.detail))
            else:
                events[index] = result
        return events

    @staticmethod
    def _advance(session: Session, devices: dict[str, Locked], events: Iterable[Event], known: Known,
                 stored: Iterable[Event], now: float) -> None:
        """Move the watermarks of the devices of the ``stored`` events and save them, seen ``now``."""
        read: dict[str, set[int]] = {}  # device -> the sequence numbers read into known
        for event in events:
            read.setdefault(event.device_id, set()).update((event.seq - 1, event.seq, event.seq + 1))
        touched = [devices[device_id] for device_id in sorted({event.device_id for event in stored})]
        advance_all(session, touched, known, read)
        save_devices(session, touched, now)

    def _conflict(self, topic: str, payload: bytes) -> Outcome:
        """A uniqueness conflict: another worker stored this event id first, with these bytes or others."""
        try:
            event = decode_event(payload, None)  # its signature was checked in the transaction that failed
            with self.store.session() as session:
                if is_redelivery(session, event, payload):
                    return Outcome("duplicate", event=event)
        except ProtocolError as exc:
            return self._dead(topic, payload, exc.reason, exc.detail)
        return self._dead(topic, payload, "internal", "a uniqueness conflict, but no event stored under its id")

    def flag_gaps(self, gap_after: float = 30.0) -> list[tuple[str, int, int]]:
        """Flag sequence holes that lasted ``gap_after`` seconds (events lost on the way); each is logged once."""
        with self.store.write_transaction() as session:
            gaps = flag_gaps(session, self.clock(), gap_after)
            found = [(gap.device_id, int(gap.first_seq or 0), int(gap.last_seq or 0)) for gap in gaps]
            told = self.gap_notices.record_gaps(session, gaps, []) if gaps and self.gap_notices else 0
        for device_id, first, last in found:
            log.warning("device %s: events %d..%d never arrived", device_id, first, last)
        if told and self.gap_notices is not None:
            self.gap_notices.notify()
        return found


def _row(event: Event, payload: bytes, flag: str | None, now: float) -> dict[str, Any]:
    """An event's row in the events table."""
    return {"event_id": event.event_id, "device_id": event.device_id, "seq": event.seq, "time_ms": event.time_ms,
            "kind": event.kind, "phase": event.phase, "severity": event.severity, "confidence": event.confidence,
            "alert_id": event.alert_id or event.event_id, "evidence": event.evidence, "flag": flag,
            "prev_hash": event.prev_hash, "payload": payload, "received_at": now}
