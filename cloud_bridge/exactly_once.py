"""Exactly once for the outbox's QoS 2 rows (proctor alerts), across bridge crashes and broker restarts.

With QoS 2 the broker keeps an incoming message from its PUBLISH, once per packet id of the publisher's
session (a PUBLISH repeated with that id is not stored again), and hands it to subscribers at the PUBREL;
Mosquitto with persistence keeps both across its restarts (tests/bridge/test_broker_qos2.py). What is left to
the publisher is remembering, across its own crash, each message's packet id and how far its exchange got.
So the bridge chooses a row's packet id and commits it with the row (state ``published``, the publisher's
client id) before the PUBLISH leaves, commits ``released`` before the PUBREL, and marks the row sent when its
PUBCOMP is recorded, which frees the id (held until then: unique among the publisher's unfinished rows).

At each CONNACK the unfinished rows go back into paho's queue: on a resumed session, ``published`` rows are
PUBLISHed again with their id (DUP) and ``released`` rows get only a PUBREL. A broker without the session
(it lost its state) has no copy: ``published`` rows go out as new, and ``released`` rows, which it may or may
not have delivered, are published again, counted in ``ambiguous`` and logged.

A broker may refuse a message at its PUBREC (MQTT 5 reason codes from 0x80: not authorized, quota exceeded,
...). paho ignores that code and would send the PUBREL, which Mosquitto completes with a PUBCOMP as if the
message had been delivered; here the exchange ends at such a PUBREC instead, the refusal is logged with its
reason and counted in ``refused``, and the row goes back to ``new`` after a pause (doubling with each refusal
in a row, up to a minute) for the relay to publish again: a refused alert is never marked sent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy import select, update

from cloud_bridge.store import Store
from cloud_bridge.store.models import OutboxMessage

log = logging.getLogger(__name__)
MAX_ID = 65_535
Row = tuple[int, str, bytes, bool]  # id, topic, payload, retain
NEW, PUBLISHED, RELEASED = "new", "published", "released"
REFUSED_PAUSE, REFUSED_PAUSE_MAX = 1.0, 60.0  # seconds before a refused message is published again


class PacketIdClient(mqtt.Client):
    """paho's client, sending the packet id the bridge chose for a QoS 2 message and asking before each PUBREL.

    The one place that reaches into paho's private API (paho-mqtt 2.2, pinned): ``_mid_generate`` (overridden),
    ``_send_pubrel`` (overridden), ``_out_messages`` with ``_out_message_mutex`` (the queue of unfinished
    messages that paho sends again at a CONNACK, read and restored here), and ``_in_packet``,
    ``_inflight_messages`` and ``_update_inflight`` to end an exchange whose PUBREC refused the message."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.held: set[int] = set()  # ids of unfinished QoS 2 rows: never handed to another message
        self.before_pubrel: Callable[[int], bool] = lambda _mid: True  # False: no PUBREL now (sent at reconnect)
        self.on_refused: Callable[[int, ReasonCode], None] = lambda _mid, _reason: None  # a PUBREC refused it
        self._ids = threading.Lock()
        self._cursor = 0
        self._chosen = threading.local()

    def _free(self) -> int:
        for _ in range(MAX_ID):
            self._cursor = self._cursor % MAX_ID + 1
            if self._cursor not in self.held and self._cursor not in self._out_messages:
                return self._cursor
        raise RuntimeError("no free MQTT packet id: 65535 messages unfinished")

    def reserve(self) -> int:
        """A packet id neither held nor in flight (the next one after the last, wrapping at 65535), now held."""
        with self._ids:
            mid = self._free()
            self.held.add(mid)
            return mid

    def hold(self, mids: Iterable[int]) -> None:
        with self._ids:
            self.held.update(mids)

    def release(self, mids: Iterable[int]) -> None:
        with self._ids:
            self.held.difference_update(mids)

    def publish_as(self, mid: int, topic: str, payload: bytes, retain: bool, qos: int = 2) -> mqtt.MQTTMessageInfo:
        """A publish with packet id ``mid`` (reserved by the caller)."""
        self._chosen.mid = mid
        try:
            return self.publish(topic, payload, qos=qos, retain=retain)
        finally:
            self._chosen.mid = None

    def _mid_generate(self) -> int:  # paho private: the id of the next PUBLISH (or SUBSCRIBE) it sends
        chosen: int | None = getattr(self._chosen, "mid", None)
        if chosen is not None:
            return chosen
        with self._ids:
            return self._free()

    def _send_pubrel(self, mid: int) -> MQTTErrorCode:  # paho private: called on a PUBREC and at a CONNACK
        refused = self._refusal()
        if refused is not None:
            return self._end_refused(mid, refused)
        if not self.before_pubrel(mid):
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        return super()._send_pubrel(mid)

    def _refusal(self) -> ReasonCode | None:
        """The reason code of the PUBREC being handled when it refuses the message (MQTT 5, 0x80 and up); None
        for an accepting one, or when no PUBREC is being handled (a CONNACK sends the PUBRELs again)."""
        packet = self._in_packet  # paho private: the packet whose handler called _send_pubrel
        body = bytes(packet.get("packet", b""))
        if (self.protocol != MQTTProtocolVersion.MQTTv5 or packet.get("command", 0) & 0xF0 != mqtt.PUBREC
                or len(body) < 3 or body[2] < 0x80):
            return None
        return ReasonCode(PacketTypes.PUBREC, identifier=body[2])

    def _end_refused(self, mid: int, reason: ReasonCode) -> MQTTErrorCode:
        """End the exchange of a refused message without a PUBREL (MQTT 5: the broker has nothing to release),
        as paho ends a completed one (its slot in flight freed), and say so to ``on_refused``."""
        rc = MQTTErrorCode.MQTT_ERR_SUCCESS
        with self._out_message_mutex:  # a re-entrant lock, held by paho's PUBREC handler
            if self._out_messages.pop(mid, None) is not None:
                self._inflight_messages -= 1
                if self._max_inflight_messages > 0:
                    rc = self._update_inflight()
        self.on_refused(mid, reason)
        return rc

    def restore(self, rows: Sequence[tuple[int, str, bytes, bool, str]], session_present: bool) -> None:
        """Put unfinished QoS 2 rows (packet id, topic, payload, retain, state) in paho's queue as the store
        says, at a CONNACK before paho sends that queue: a PUBREL for a released row on a resumed session, else
        a PUBLISH (DUP on a resumed session). No more go out at once than paho's in-flight limit (the broker's
        receive maximum: Mosquitto answers a PUBLISH beyond it with a PUBREC "quota exceeded" that paho takes
        for success); a PUBREL cannot wait behind that limit (paho sends a held-back message as a PUBLISH),
        and released rows never outnumber it (a row is released only while in flight)."""
        with self._out_message_mutex:
            mine: dict[int, str] = {}
            for mid, topic, payload, retain, state in rows:
                message = self._out_messages.get(mid)
                if message is None or message.qos != 2:
                    message = mqtt.MQTTMessage(mid, topic.encode())
                    message.payload, message.qos, message.retain = payload, 2, retain
                    self._out_messages[mid] = message
                message.timestamp = 0
                message.dup = session_present and state == PUBLISHED
                mine[mid] = RELEASED if session_present and state == RELEASED else PUBLISHED
            released = [mid for mid, state in mine.items() if state == RELEASED]
            others = [mid for mid in mine if mine[mid] == PUBLISHED] + [
                mid for mid in self._out_messages if mid not in mine]
            room = (self._max_inflight_messages or MAX_ID) - len(released)
            for mid in released:
                self._out_messages[mid].state = mqtt.mqtt_ms_resend_pubrel
            for n, mid in enumerate(others):  # paho's own QoS 1 messages keep their DUP flag
                self._out_messages[mid].state = mqtt.mqtt_ms_publish if n < room else mqtt.mqtt_ms_queued
            for mid in released + others:  # paho's CONNACK pass stops at the first held-back message
                self._out_messages.move_to_end(mid)


class ExactlyOnce:
    """The QoS 2 rows of one publisher client (``client_id``) over ``store``."""

    def __init__(self, store: Store, client: PacketIdClient, client_id: str) -> None:
        self.store, self.client, self.client_id = store, client, client_id
        self.ambiguous = 0  # released rows published again because the broker had lost the session
        self.resumed = 0  # unfinished rows taken up again at a CONNACK
        self._claim = threading.Lock()
        self._state = threading.Lock()
        self._waiting: dict[int, int] = {}  # packet id -> row id, until the PUBCOMP
        self._done: dict[int, int] = {}  # row id -> packet id: PUBCOMP received, not yet recorded
        self.refused = 0  # messages the broker refused at their PUBREC (published again after a pause)
        self._refusals = 0  # refusals since the last completed exchange (the pause doubles with each)
        client.before_pubrel, client.on_refused = self._released, self._refused
        client.hold(mid for _row, mid, *_rest in self._unfinished())

    def _mine(self) -> Any:
        return (OutboxMessage.publisher == self.client_id, OutboxMessage.packet_id.is_not(None),
                OutboxMessage.sent_at.is_(None))

    def _unfinished(self) -> list[tuple[int, int, str, bytes, bool, str]]:
        columns = (OutboxMessage.id, OutboxMessage.packet_id, OutboxMessage.topic, OutboxMessage.payload,
                   OutboxMessage.retain, OutboxMessage.state)
        with self.store.session() as session:
            found = session.execute(select(*columns).where(*self._mine()).order_by(OutboxMessage.id)).all()
        return [(row_id, mid or 0, topic, bytes(payload), retain, state)
                for row_id, mid, topic, payload, retain, state in found]

    def send(self, rows: Sequence[Row]) -> int:
        """Claim ``rows`` (state new) with packet ids in one transaction, then publish them; the number sent. A
        row another process or thread claimed first is skipped; a failure leaves the rows new (the relay
        retries)."""
        with self._claim:
            mids = [self.client.reserve() for _ in rows]
            claimed: list[tuple[Row, int]] = []
            try:
                with self.store.session() as session, session.begin():
                    for row, mid in zip(rows, mids, strict=True):
                        result = session.execute(
                            update(OutboxMessage).where(OutboxMessage.id == row[0], OutboxMessage.packet_id.is_(None),
                                                        OutboxMessage.sent_at.is_(None))
                            .values(packet_id=mid, publisher=self.client_id, state=PUBLISHED))
                        if getattr(result, "rowcount", 0) == 1:
                            claimed.append((row, mid))
            except Exception as exc:
                log.warning("exactly once: %d messages not claimed (retried): %s", len(rows), exc)
                claimed = []
            self.client.release(set(mids) - {mid for _row, mid in claimed})
            sent = 0
            for (row_id, topic, payload, retain), mid in claimed:
                with self._state:
                    self._waiting[mid] = row_id
                info = self.client.publish_as(mid, topic, payload, retain)  # paho queues it while disconnected
                if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
                    self._unclaim(row_id, mid)
                else:
                    sent += 1
            return sent

    def _refused(self, mid: int, reason: ReasonCode) -> None:
        """The broker refused the message at its PUBREC: nothing was delivered; its row goes back to new after
        a pause (the relay publishes it again)."""
        with self._state:
            row_id = self._waiting.pop(mid, None)
            self.refused += 1
            self._refusals += 1
            pause = min(REFUSED_PAUSE_MAX, REFUSED_PAUSE * 2 ** min(self._refusals - 1, 10))
        if row_id is None:
            return
        log.error("exactly once: the broker refused message %d at its PUBREC (%s); published again in %.0f s",
                  row_id, reason, pause)
        timer = threading.Timer(pause, self._unclaim_refused, (row_id, mid))
        timer.daemon = True
        timer.start()

    def _unclaim_refused(self, row_id: int, mid: int) -> None:
        with self._state:
            if mid in self._waiting:  # taken up again at a reconnect meanwhile: in flight once more
                return
        try:
            with self.store.session() as session, session.begin():
                session.execute(update(OutboxMessage).where(
                    OutboxMessage.id == row_id, OutboxMessage.packet_id == mid, OutboxMessage.sent_at.is_(None))
                    .values(packet_id=None, publisher=None, state=NEW))
        except Exception as exc:  # the store is away: the row keeps its id and goes again at the next CONNACK
            log.warning("exactly once: refused message %d not put back (%s)", row_id, exc)
            return
        self.client.release([mid])

    def _unclaim(self, row_id: int, mid: int) -> None:
        """A claimed row paho would not queue: back to new, its id freed."""
        log.warning("exactly once: message %d not queued by paho (retried)", row_id)
        with self._state:
            self._waiting.pop(mid, None)
        with self.store.session() as session, session.begin():
            session.execute(update(OutboxMessage).where(OutboxMessage.id == row_id)
                            .values(packet_id=None, publisher=None, state=NEW))
        self.client.release([mid])

    def _released(self, mid: int) -> bool:
        """At a PUBREC, before the PUBREL: commit ``released``. False (no PUBREL now: it goes at the next
        CONNACK, or the PUBLISH again if this never committed) when the store is away."""
        for attempt in range(3):
            try:
                with self.store.session() as session, session.begin():
                    session.execute(update(OutboxMessage).where(*self._mine(), OutboxMessage.packet_id == mid,
                                                                OutboxMessage.state == PUBLISHED)
                                    .values(state=RELEASED))
                return True
            except Exception as exc:
                log.warning("exactly once: packet %d not marked released (attempt %d): %s", mid, attempt + 1, exc)
                time.sleep(0.1)
        return False

    def completed(self, mid: int) -> None:
        """At a PUBCOMP (paho's on_publish, which a PUBACK also calls: those ids are not waiting here)."""
        with self._state:
            row_id = self._waiting.pop(mid, None)
            if row_id is not None:
                self._done[row_id] = mid
                self._refusals = 0

    def take_done(self) -> dict[int, int]:
        """Rows whose PUBCOMP came (row id -> packet id), for the outbox to mark sent and then :meth:`recorded`."""
        with self._state:
            done, self._done = self._done, {}
            return done

    def recorded(self, done: dict[int, int], ok: bool) -> None:
        """The rows of :meth:`take_done` are marked sent (their ids freed), or (``ok`` False) not yet."""
        if ok:
            self.client.release(done.values())
        else:
            with self._state:
                self._done.update(done)

    def resume(self, session_present: bool) -> None:
        """At a CONNACK: put this publisher's unfinished rows back in paho's queue (see the module's doc)."""
        with self._claim:
            with self._state:
                done = set(self._done)
            rows = [row for row in self._unfinished() if row[0] not in done]
            if not session_present:
                again = [row_id for row_id, *_rest, state in rows if state == RELEASED]
                if again:
                    self.ambiguous += len(again)
                    log.warning("exactly once: the broker lost the session of %s; %d released messages are "
                                "published again and may arrive twice", self.client_id, len(again))
                    with self.store.session() as session, session.begin():
                        session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(again))
                                        .values(state=PUBLISHED))
                rows = [(*row[:5], PUBLISHED) for row in rows]
            with self._state:
                self._waiting.update({mid: row_id for row_id, mid, *_rest in rows})
            self.client.restore([(mid, topic, payload, retain, state) for _id, mid, topic, payload, retain, state
                                 in rows], session_present)
            self.resumed += len(rows)
