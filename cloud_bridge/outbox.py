"""The bridge's outbox: what it publishes (proctor alerts, device commands) is written in the transaction that
caused it, published after the commit, and marked sent on the broker's PUBACK (QoS 1) or PUBCOMP (QoS 2).

So a bridge that dies between storing an event and republishing its alert (or between ending a session and
telling the unit) publishes it when it starts again: a crash delays a message, never drops it. ``add`` puts
a row in the caller's transaction; when that transaction commits, the rows are handed to ``publish`` at
once. The relay (:meth:`BridgeOutbox.run`, one thread of the running bridge) marks acknowledged rows sent,
publishes rows nobody is publishing (left by a crash or a failed publish, or written by a process without a
broker connection, such as a dead-letter replay) once they are ``stale_after`` seconds old, and prunes sent
rows after ``keep_sent`` seconds. A PUBACK that refuses a QoS 1 message (MQTT 5 reason codes from 0x80, which
paho counts as published) leaves its row unsent: it goes again after a pause of a second that doubles with
each refusal in a row, up to a minute (QoS 2 rows: cloud_bridge/exactly_once.py does the same at a PUBREC).

QoS 1 rows (device commands) are delivered at least once: every message carries its own id, and one can
arrive twice when a PUBACK is lost or two bridge processes both take an old row. QoS 2 rows (proctor alerts)
published through a :class:`~cloud_bridge.mqtt.Publisher` go exactly once (cloud_bridge/exactly_once.py):
each is claimed with a packet id committed before its PUBLISH, taken up again at a reconnect or restart as the
store says, and marked sent on its PUBCOMP. Over any other ``publish`` (a test double) they go at QoS 2 but
are tracked like QoS 1 rows: at least once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from paho.mqtt.enums import MQTTErrorCode
from sqlalchemy import delete, event, func, select, update
from sqlalchemy.orm import Session

from cloud_bridge.exactly_once import Row
from cloud_bridge.mqtt import Publication, Publisher
from cloud_bridge.store import Store
from cloud_bridge.store.models import OutboxMessage

log = logging.getLogger(__name__)
# topic, payload, qos, retain -> paho's MQTTMessageInfo (acknowledged when is_published()), or None when the
# publish is complete on return (a test double)
Publish = Callable[[str, bytes, int, bool], object]
Payload = bytes | Callable[[int], bytes]  # the bytes, or built from the row's id (a command's number)
PENDING, HOOKED = "invigil_outbox_pending", "invigil_outbox_hooked"  # Session.info keys
DONE = object()  # an in-flight entry acknowledged on return
PAUSED = object()  # an in-flight entry the broker refused: published again once its time has come
REFUSED_PAUSE, REFUSED_PAUSE_MAX = 1.0, 60.0  # seconds before a refused QoS 1 message goes again (doubling)
CHUNK = 500  # ids per UPDATE ... IN (...)


def _acknowledged(info: Any) -> bool:
    """Whether the broker acknowledged a message. paho queues a QoS 1 message published while it is
    disconnected (rc ``MQTT_ERR_NO_CONN``) and sends it after the reconnect, but ``is_published()`` raises for
    it ever after; its PUBACK still sets the flag that method reads."""
    info = info.info if isinstance(info, Publication) else info
    try:
        return bool(info.is_published())
    except RuntimeError:
        return bool(getattr(info, "_published", False))


class BridgeOutbox:
    def __init__(self, store: Store, publish: Publish | None = None, clock: Callable[[], float] = time.time, *,
                 stale_after: float = 5.0, resend_after: float = 60.0, window: int = 500,
                 keep_sent: float = 3600.0) -> None:
        self.store, self.publish, self.clock = store, publish, clock
        self.stale_after, self.resend_after, self.window, self.keep_sent = stale_after, resend_after, window, keep_sent
        self.published = self.marked = 0
        self.refused = 0  # QoS 1 messages the broker refused at their PUBACK (published again after a pause)
        self._refusals = 0  # refusals since the last acknowledged message (the pause doubles with each)
        self._lock = threading.Lock()
        # row id -> (message info, DONE or None, handed at), or (PAUSED, when it may go again)
        self._inflight: dict[int, tuple[Any, float]] = {}
        self._next_prune = 0.0
        owner = getattr(publish, "__self__", None)  # a Publisher's publish: QoS 2 rows go exactly once
        self.exactly_once = owner.exactly_once(store) if isinstance(owner, Publisher) else None

    def add(self, session: Session, topic: str, payload: Payload, qos: int = 1, retain: bool = False) -> int:
        """Write a message in ``session``'s transaction; it is published once that commits. The row's id."""
        row = OutboxMessage(topic=topic, payload=payload if isinstance(payload, bytes) else b"", qos=qos,
                            retain=retain, created_at=self.clock(), sent_at=None)
        session.add(row)
        session.flush()  # assigns the id
        if not isinstance(payload, bytes):
            row.payload = payload(row.id)
        self._pending(session).append((row.id, topic, row.payload, qos, retain))
        return row.id

    def add_many(self, session: Session, messages: Sequence[tuple[str, bytes]], qos: int = 1,
                 retain: bool = False) -> None:
        """:meth:`add` for several messages at once (one insert): a batch's proctor alerts."""
        now = self.clock()
        rows = [OutboxMessage(topic=topic, payload=payload, qos=qos, retain=retain, created_at=now, sent_at=None)
                for topic, payload in messages]
        session.add_all(rows)
        session.flush()  # assigns the ids
        self._pending(session).extend((row.id, row.topic, row.payload, qos, retain) for row in rows)

    def _pending(self, session: Session) -> list[tuple[int, str, bytes, int, bool]]:
        """The session's rows to publish after its commit (dropped by a rollback)."""
        if not session.info.get(HOOKED):
            session.info[HOOKED] = True
            event.listen(session, "after_commit", self._after_commit)
            event.listen(session, "after_rollback", lambda s: s.info.pop(PENDING, None))
        pending: list[tuple[int, str, bytes, int, bool]] = session.info.setdefault(PENDING, [])
        return pending

    def pending(self) -> int:
        """Rows not yet acknowledged by the broker."""
        with self.store.session() as session:
            return int(session.scalar(select(func.count()).select_from(OutboxMessage)
                                      .where(OutboxMessage.sent_at.is_(None))) or 0)

    def _after_commit(self, session: Session) -> None:
        self._send_all(session.info.pop(PENDING, []))

    def _send_all(self, rows: Sequence[tuple[int, str, bytes, int, bool]]) -> None:
        once: list[Row] = []
        for row_id, topic, payload, qos, retain in rows:
            if qos == 2 and self.exactly_once is not None:
                once.append((row_id, topic, payload, retain))
            else:
                self._send(row_id, topic, payload, qos, retain)
        if once and self.exactly_once is not None:
            sent = self.exactly_once.send(once)
            with self._lock:
                self.published += sent

    def _send(self, row_id: int, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        if self.publish is None:
            return  # a process without a broker connection: the running bridge's relay publishes it
        now = self.clock()
        with self._lock:
            if row_id in self._inflight:
                return
            self._inflight[row_id] = (None, now)  # claimed: the relay leaves it alone
        try:
            info = self.publish(topic, payload, qos, retain)
            failed = getattr(info, "rc", None) == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE  # not queued at all
        except Exception as exc:
            log.warning("outbox message %d to %s not published: %s", row_id, topic, exc)
            info, failed = None, True
        with self._lock:
            if failed:  # stays unsent: the relay tries again
                self._inflight.pop(row_id, None)
                return
            self._inflight[row_id] = (DONE if info is None else info, now)
            self.published += 1

    def poll(self) -> int:
        """One relay turn: mark acknowledged rows sent, publish unsent rows nobody is publishing, prune; the
        number of rows marked sent."""
        now = self.clock()
        acked: list[int] = []
        with self._lock:
            for row_id, (info, at) in list(self._inflight.items()):
                if info is PAUSED:
                    if now >= at:  # its pause is over: the stale rows' pass publishes it again
                        del self._inflight[row_id]
                elif info is not None and getattr(info, "refused", None) is not None:  # paho: published all the same
                    self.refused += 1
                    self._refusals += 1
                    pause = min(REFUSED_PAUSE_MAX, REFUSED_PAUSE * 2 ** min(self._refusals - 1, 10))
                    log.error("outbox message %d refused by the broker (%s); published again in %.0f s", row_id,
                              info.refused, pause)
                    self._inflight[row_id] = (PAUSED, now + pause)
                elif info is DONE or (info is not None and _acknowledged(info)):
                    acked.append(row_id)
                    del self._inflight[row_id]
                    self._refusals = 0
                elif info is not None and now - at > self.resend_after:  # no PUBACK in a minute: publish again
                    del self._inflight[row_id]
        for start in range(0, len(acked), CHUNK):
            chunk = acked[start:start + CHUNK]
            if self._mark_sent(chunk, now):
                self.marked += len(chunk)
            else:
                with self._lock:
                    self._inflight.update({row_id: (DONE, now) for row_id in chunk})
        if self.exactly_once is not None:  # QoS 2 rows whose PUBCOMP came: sent, their packet ids freed
            done = self.exactly_once.take_done()
            ok = not done or self._mark_sent(list(done), now)
            self.exactly_once.recorded(done, ok)
            if ok:
                self.marked += len(done)
                acked += done
        if self.publish is not None:
            self._publish_stale(now)
        if now >= self._next_prune:
            self._next_prune = now + 60.0
            with self.store.session() as session, session.begin():
                session.execute(delete(OutboxMessage).where(OutboxMessage.sent_at < now - self.keep_sent))
        return len(acked)

    def _mark_sent(self, row_ids: list[int], now: float) -> bool:
        """Mark rows sent (a QoS 2 row's packet id freed with it); False when the database is busy (the next
        turn tries again)."""
        try:
            with self.store.session() as session, session.begin():
                for start in range(0, len(row_ids), CHUNK):
                    session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(row_ids[start:start + CHUNK]))
                                    .values(sent_at=now, packet_id=None))
            return True
        except Exception as exc:
            log.warning("outbox: %d acknowledged messages not marked sent yet: %s", len(row_ids), exc)
            return False

    def _publish_stale(self, now: float) -> None:
        with self._lock:
            room = self.window - len(self._inflight)
            busy = set(self._inflight)
        if room <= 0:
            return
        with self.store.session() as session:
            rows = session.execute(
                select(OutboxMessage.id, OutboxMessage.topic, OutboxMessage.payload, OutboxMessage.qos,
                       OutboxMessage.retain)
                .where(OutboxMessage.sent_at.is_(None), OutboxMessage.created_at <= now - self.stale_after,
                       OutboxMessage.packet_id.is_(None))  # a claimed QoS 2 row is taken up at a reconnect only
                .order_by(OutboxMessage.id).limit(room + len(busy))).all()
        self._send_all([(row_id, topic, bytes(payload), qos, retain) for row_id, topic, payload, qos, retain in rows
                        if row_id not in busy])

    def run(self, stop: threading.Event, every: float = 0.2) -> None:
        """The relay: :meth:`poll` every ``every`` seconds until ``stop`` is set."""
        while not stop.wait(every):
            try:
                self.poll()
            except Exception:  # a database that is away: the next turn tries again
                log.exception("outbox relay turn failed")
