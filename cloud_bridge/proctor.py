"""What proctors see: paired alerts, republished to ``invigil/v1/proctor/<exam>/alerts`` and kept for the page.

Every stored event of a device paired with an active session becomes a proctor alert (once: the event id
is unique), with the exam, session and candidate. ``device_offline`` is raised here, by the bridge, when a
paired device's last will arrives or it falls silent, and ended when it is back; ``events_missing`` when a
hole in a paired device's sequence numbers has lasted (events lost on the way, flagged ``gap``), and ended
if they arrive after all (a unit sends what the bridge has not receipted again after a reconnect). Each
alert's republish is written to the bridge's outbox (cloud_bridge/outbox.py) in the alert's own transaction
and published after the commit, so a bridge that dies in between publishes it when it is back; alerts go at
QoS 2, exactly once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud_bridge.outbox import BridgeOutbox
from cloud_bridge.outbox import Publish as Publish
from cloud_bridge.store import Store
from cloud_bridge.store.models import ExamSession, Gap, ProctorAlert
from edge_app.protocol import VERSION, Event, proctor_topic

log = logging.getLogger(__name__)
Recorded = tuple[ProctorAlert, str]  # the alert row and its candidate
ALERT_QOS = 2  # exactly once to QoS 2 subscribers (cloud_bridge/exactly_once.py)
GAP_KIND = "events_missing"  # raised by the bridge: events of a paired unit lost on the way
GAP_IDS = uuid.UUID("5d1c0a52-6b1f-4c1e-9a51-6e76696769c0")  # names a gap's alert id (start and end agree)


def gap_alert_id(gap: Gap) -> str:
    """The ``events_missing`` alert id of a hole: the same when it is flagged and when it fills."""
    return uuid.uuid5(GAP_IDS, f"{gap.device_id}:{gap.first_seq}:{gap.last_seq}").hex


def alert_message(row: ProctorAlert, candidate_id: str) -> dict[str, Any]:
    """The proctor-facing form of an alert (the MQTT republish and the page's server-sent events)."""
    return {"v": VERSION, "id": row.id, "exam": row.exam_id, "session": row.session_id, "candidate": candidate_id,
            "device": row.device_id, "kind": row.kind, "phase": row.phase, "severity": row.severity,
            "confidence": round(row.confidence, 2), "t": row.time_ms, "alert": row.alert_id, "event": row.event_id,
            "evidence": row.evidence, "flag": row.flag, "keyword": row.keyword}


def encode_alert(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


class ProctorFeed:
    def __init__(self, store: Store, publish: Publish | None = None, clock: Callable[[], float] = time.time,
                 outbox: BridgeOutbox | None = None) -> None:
        """``outbox``: the bridge's (shared with its commands); by default one of its own over ``publish``."""
        self.store, self.clock = store, clock
        self.outbox = outbox if outbox is not None else BridgeOutbox(store, publish, clock)
        self.changed = threading.Condition()  # notified on every new alert and health change (the live page)
        self.version = 0

    def notify(self) -> None:
        with self.changed:
            self.version += 1
            self.changed.notify_all()

    def wait(self, seen: int, timeout: float) -> int:
        """Block until something changed after ``seen`` (or ``timeout``); the current version."""
        with self.changed:
            self.changed.wait_for(lambda: self.version != seen, timeout)
            return self.version

    def record(self, session: Session, event: Event, flag: str | None) -> Recorded | None:
        """Add the proctor alert of a device event being stored, if its device is paired, and its republish to
        the outbox, inside the event's own transaction (so an event is never stored without them); call
        :meth:`deliver` after the commit."""
        return self.record_batch(session, [(event, flag)])[0]

    def record_batch(self, session: Session, stored: list[tuple[Event, str | None]]) -> list[Recorded | None]:
        """:meth:`record` for a batch of events being stored (with their chain flags) in one transaction: one
        read of their devices' sessions, one insert of the alerts and one of their outbox rows."""
        active = self._paired(session, {event.device_id for event, _flag in stored})
        recorded: list[Recorded | None] = []
        for event, flag in stored:
            paired = active.get(event.device_id)
            recorded.append(None if paired is None else (ProctorAlert(
                session_id=paired.session_id, exam_id=paired.exam_id, device_id=event.device_id,
                event_id=event.event_id, alert_id=event.alert_id or event.event_id, kind=event.kind,
                phase=event.phase, severity=event.severity, confidence=event.confidence, time_ms=event.time_ms,
                evidence=event.evidence, flag=flag, keyword=event.keyword, created_at=self.clock()),
                paired.candidate_id))
        alerts = [item for item in recorded if item is not None]
        if alerts:
            session.add_all([row for row, _candidate in alerts])
            session.flush()  # the alerts' ids, which their messages carry
            self.outbox.add_many(session, [(proctor_topic(row.exam_id), encode_alert(alert_message(row, candidate)))
                                           for row, candidate in alerts], qos=ALERT_QOS)
        return recorded

    @staticmethod
    def _paired(session: Session, devices: Collection[str]) -> dict[str, Row[Any, Any, Any, Any]]:
        """The active session (ids, exam, candidate) of each of ``devices`` that is paired."""
        table = ExamSession.__table__.c  # Core columns: the sessions' names, not their photos
        return {row.device_id: row for row in session.connection().execute(
            select(table.device_id, table.session_id, table.exam_id, table.candidate_id).where(
                table.device_id.in_(set(devices)), table.state == "paired"))}

    def record_gaps(self, session: Session, found: Sequence[Gap], filled: Sequence[Gap]) -> int:
        """Start ``events_missing`` (flagged ``gap``) for each hole ``found`` in a paired device's events, and end
        it for each hole ``filled`` whose start its session was told, in the caller's transaction (the gap's own);
        how many alerts were added (call :meth:`notify` after the commit)."""
        active = self._paired(session, {gap.device_id for gap in [*found, *filled]})
        told = set(session.execute(select(ProctorAlert.session_id, ProctorAlert.alert_id).where(
            ProctorAlert.session_id.in_({paired.session_id for paired in active.values()}),
            ProctorAlert.alert_id.in_([gap_alert_id(g) for g in filled if g.device_id in active]),
            ProctorAlert.phase == "start")).tuples()) if filled and active else set()
        now, added = self.clock(), 0
        for gap, start in [*((g, True) for g in found), *((g, False) for g in filled)]:
            paired = active.get(gap.device_id)
            if paired is None:
                continue
            alert_id = gap_alert_id(gap)
            if not start and (paired.session_id, alert_id) not in told:
                continue  # found while the unit was not in this session: nothing to end
            self._add(session, ProctorAlert(
                session_id=paired.session_id, exam_id=paired.exam_id, device_id=gap.device_id, event_id=None,
                alert_id=alert_id, kind=GAP_KIND, phase="start" if start else "end", severity="warning",
                confidence=1.0, time_ms=int(now * 1000), evidence=None, flag="gap" if start else None,
                created_at=now), paired.candidate_id)
            added += 1
        return added

    def _add(self, session: Session, row: ProctorAlert, candidate: str) -> None:
        session.add(row)
        session.flush()  # the alert's id, which the message carries
        self.outbox.add(session, proctor_topic(row.exam_id), encode_alert(alert_message(row, candidate)), qos=ALERT_QOS)

    def deliver(self, recorded: Recorded) -> dict[str, Any]:
        """Wake the live pages for a committed proctor alert (the outbox publishes it); the message."""
        return self._deliver(*recorded)

    def on_event(self, event: Event, flag: str | None) -> dict[str, Any] | None:
        """Record (in a transaction of its own) and republish an event already stored; the message, or None."""
        try:
            with self.store.session() as session, session.begin():
                recorded = self.record(session, event, flag)
        except IntegrityError:  # already recorded (another worker, or a resend)
            return None
        return self.deliver(recorded) if recorded is not None else None

    def device_offline(self, device_id: str, reason: str) -> dict[str, Any] | None:
        """Start ``device_offline`` for the device's active session (once per outage)."""
        return self._offline(device_id, start=True, detail=reason)

    def device_back(self, device_id: str) -> dict[str, Any] | None:
        """End the open ``device_offline`` of the device's active session, if any."""
        return self._offline(device_id, start=False, detail="")

    def _offline(self, device_id: str, start: bool, detail: str) -> dict[str, Any] | None:
        now = self.clock()
        with self.store.session() as session, session.begin():
            active = session.scalar(select(ExamSession).where(ExamSession.device_id == device_id,
                                                              ExamSession.state == "paired").with_for_update())
            if active is None or (active.offline_alert is not None) == start:
                return None
            alert_id = uuid.uuid4().hex if start else active.offline_alert
            assert alert_id is not None
            active.offline_alert = alert_id if start else None
            row = ProctorAlert(session_id=active.session_id, exam_id=active.exam_id, device_id=device_id,
                               event_id=None, alert_id=alert_id, kind="device_offline",
                               phase="start" if start else "end", severity="critical", confidence=1.0,
                               time_ms=int(now * 1000), evidence=None, flag=None, created_at=now)
            candidate = active.candidate_id
            self._add(session, row, candidate)
        log.warning("device %s %s (%s)", device_id, "offline during its session" if start else "back", detail)
        return self._deliver(row, candidate)

    def _deliver(self, row: ProctorAlert, candidate: str) -> dict[str, Any]:
        message = alert_message(row, candidate)
        self.notify()
        return message

    def alerts(self, exam_id: str, after_id: int = 0, limit: int = 500) -> list[dict[str, Any]]:
        """The exam's alerts after ``after_id``, oldest first."""
        with self.store.session() as session:
            rows = session.execute(
                select(ProctorAlert, ExamSession.candidate_id)
                .join(ExamSession, ExamSession.session_id == ProctorAlert.session_id)
                .where(ProctorAlert.exam_id == exam_id, ProctorAlert.id > after_id)
                .order_by(ProctorAlert.id).limit(limit)).all()
            return [alert_message(row, candidate) for row, candidate in rows]
