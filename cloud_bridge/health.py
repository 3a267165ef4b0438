"""Device health from births, last wills and heartbeats; ``device_offline`` for paired devices that vanish.

An ``offline`` status (the unit's last will, or its own word when it stops) raises ``device_offline`` only
once it has lasted ``offline_grace`` seconds: a broker restart re-delivers retained wills and a unit
reconnects within seconds, and proctors should not be alarmed by either. Silence (no message at all for
``offline_after`` seconds) raises it too; a birth or heartbeat ends it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from cloud_bridge.proctor import ProctorFeed
from cloud_bridge.store import Store
from cloud_bridge.store.models import Device, ExamSession
from edge_app.protocol.placement import placement_verdict


class Health:
    def __init__(self, store: Store, feed: ProctorFeed, offline_after: float = 30.0, offline_grace: float = 5.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.store, self.feed, self.offline_after, self.clock = store, feed, offline_after, clock
        self.offline_grace = offline_grace

    def status(self, device_id: str, state: str) -> bool:
        """A retained birth (``online``) or last will (``offline``); False for an unregistered device."""
        now = self.clock()
        with self.store.session() as session, session.begin():
            device = session.get(Device, device_id)
            if device is None:
                return False
            if device.status != state:
                device.status, device.status_at = state, now
            if state == "online":
                device.last_seen = now
        if state == "online":
            self.feed.device_back(device_id)
        self.feed.notify()
        return True

    def stats(self, device_id: str, fields: dict[str, Any]) -> bool:
        now = self.clock()
        with self.store.session() as session, session.begin():
            device = session.get(Device, device_id)
            if device is None:
                return False
            device.stats, device.stats_at, device.last_seen = json.dumps(fields, separators=(",", ":")), now, now
            if device.status != "online":
                device.status, device.status_at = "online", now
        self.feed.device_back(device_id)
        self.feed.notify()
        return True

    def placement(self, device_id: str) -> dict[str, Any] | None:
        """The placement verdict of the unit's last heartbeat (usable, failed checks, guidance, when), if any."""
        with self.store.session() as session:
            device = session.get(Device, device_id)
            if device is None or not device.stats:
                return None
            try:
                code = json.loads(device.stats).get("placement")
            except (ValueError, AttributeError):
                return None
            verdict = placement_verdict(code)
            return None if verdict is None else {**verdict, "at": device.stats_at}

    def sweep(self) -> list[str]:
        """Raise ``device_offline`` for paired devices offline for ``offline_grace`` seconds or silent for
        ``offline_after`` seconds; their ids."""
        now = self.clock()
        with self.store.session() as session:
            watched = session.execute(
                select(ExamSession.device_id, Device.last_seen, ExamSession.paired_at, Device.status,
                       Device.status_at)
                .join(Device, Device.device_id == ExamSession.device_id)
                .where(ExamSession.state == "paired", ExamSession.offline_alert.is_(None))).all()
        raised = []
        for device_id, last_seen, paired_at, status, status_at in watched:
            if device_id is None:
                continue
            if status == "offline" and (status_at or 0.0) <= now - self.offline_grace:
                reason = f"offline for {now - (status_at or 0.0):.0f} s (its last will, or it stopped)"
            elif max(last_seen or 0.0, paired_at or 0.0) < now - self.offline_after:
                reason = f"silent for {self.offline_after:g} s"
            else:
                continue
            if self.feed.device_offline(device_id, reason) is not None:
                raised.append(device_id)
        return raised

    def exam_view(self, exam_id: str) -> list[dict[str, Any]]:
        """The exam's sessions with their candidate and device health, for the proctor page."""
        with self.store.session() as session:
            rows = session.execute(
                select(ExamSession, Device).outerjoin(Device, Device.device_id == ExamSession.device_id)
                .where(ExamSession.exam_id == exam_id).order_by(ExamSession.created_at)).all()
            out = []
            for exam_session, device in rows:
                stats = json.loads(device.stats) if device is not None and device.stats else None
                out.append({
                    "session": exam_session.session_id, "candidate": exam_session.candidate_id,
                    "state": exam_session.state, "device": exam_session.device_id,
                    "device_status": device.status if device is not None else None,
                    "offline": exam_session.offline_alert is not None,
                    "last_seen": device.last_seen if device is not None else None, "stats": stats,
                })
            return out
