"""A session's timeline from the store: both angles on one clock (seconds since 1970), what the risk score reads
(cloud_bridge/risk.py) and what the review page plots.

- the unit's alerts: its proctor alert rows grouped by ``alert_id`` (start .. end; one still open runs to the
  end of the session), with the highest severity and confidence any of its rows had, and its snapshots;
- ``device_offline`` stretches the bridge raised (an open one runs to the end);
- events lost in the unit's gaps found during the session that never filled (and events the unit reported it
  could not store);
- the PC's events (cloud_bridge/pc_events.py);
- whether the unit's placement was usable, if its last heartbeat (during or after the session) says so.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from cloud_bridge.pc_events import PcEvents, PcEventView
from cloud_bridge.risk import AlertSpan, Timeline
from cloud_bridge.store import Store
from cloud_bridge.store.models import Device, ExamSession, Gap, ProctorAlert
from edge_app.protocol.placement import placement_verdict

SEVERITY_ORDER = ("info", "warning", "critical")
GAP_LATE = 120.0  # s after the end: a hole of the session's last minutes is flagged a little later
OFFLINE = "device_offline"


@dataclass
class AlertItem:
    """One alert of the unit, its rows grouped by alert id."""

    alert_id: str
    kind: str
    severity: str
    confidence: float
    start: float
    end: float | None  # None: still open when the session ended (or now)
    first_id: int  # the proctor alert row of its start (the order of the queue)
    evidence: list[str] = field(default_factory=list)
    keyword: str | None = None
    flag: str | None = None

    def duration(self, timeline_end: float) -> float:
        return max(0.0, (timeline_end if self.end is None else self.end) - self.start)


@dataclass
class SessionTimeline:
    session_id: str
    exam_id: str
    candidate_id: str
    device_id: str | None
    state: str
    start: float
    end: float
    alerts: list[AlertItem] = field(default_factory=list)  # the unit's, device_offline not among them
    offline: list[tuple[float, float | None]] = field(default_factory=list)
    lost_events: int = 0
    placement_usable: bool | None = None
    pc_events: list[PcEventView] = field(default_factory=list)

    def risk_timeline(self) -> Timeline:
        """What the risk score reads."""
        return Timeline(self.start, self.end,
                        [AlertSpan(a.kind, a.severity, a.confidence, a.start, a.end) for a in self.alerts],
                        list(self.offline), self.lost_events, self.placement_usable,
                        [(event.kind, event.t / 1000.0) for event in self.pc_events])

    def as_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id, "exam_id": self.exam_id, "candidate_id": self.candidate_id,
            "device_id": self.device_id, "state": self.state, "start": self.start, "end": self.end,
            "alerts": [{"alert_id": a.alert_id, "kind": a.kind, "severity": a.severity,
                        "confidence": round(a.confidence, 2), "start": a.start, "end": a.end,
                        "duration": round(a.duration(self.end), 1), "evidence": a.evidence, "keyword": a.keyword,
                        "flag": a.flag} for a in self.alerts],
            "offline": [{"start": start, "end": end} for start, end in self.offline],
            "lost_events": self.lost_events, "placement_usable": self.placement_usable,
            "pc_events": [event.as_dict() for event in self.pc_events]}


def _group(rows: list[ProctorAlert]) -> list[AlertItem]:
    items: dict[str, AlertItem] = {}
    for row in sorted(rows, key=lambda r: (r.time_ms, r.id)):
        at = row.time_ms / 1000.0
        item = items.get(row.alert_id)
        if item is None:
            item = items[row.alert_id] = AlertItem(row.alert_id, row.kind, row.severity, row.confidence, at, None,
                                                   row.id)
        else:
            if SEVERITY_ORDER.index(row.severity) > SEVERITY_ORDER.index(item.severity):
                item.severity = row.severity
            item.confidence = max(item.confidence, row.confidence)
        if row.phase == "end":
            item.end = at
        if row.evidence and row.evidence not in item.evidence:
            item.evidence.append(row.evidence)
        item.keyword = item.keyword or row.keyword
        item.flag = item.flag or row.flag
    return sorted(items.values(), key=lambda a: (a.start, a.first_id))


def _lost(gaps: list[Gap]) -> int:
    return sum(max(0, gap.count - (gap.filled or 0)) if gap.reason == "missing" else gap.count for gap in gaps)


def _placement(device: Device | None, start: float) -> bool | None:
    if device is None or not device.stats or device.stats_at is None or device.stats_at < start:
        return None
    try:
        stats = json.loads(device.stats)
    except ValueError:
        return None
    verdict = placement_verdict(stats.get("placement")) if isinstance(stats, dict) else None
    return None if verdict is None else bool(verdict["usable"])


def build(store: Store, session_id: str, now: float | None = None) -> SessionTimeline | None:
    """The session's timeline (None: no such session); an open session ends ``now``."""
    with store.session() as session:
        row = session.get(ExamSession, session_id)
        if row is None:
            return None
        start = row.paired_at if row.paired_at is not None else row.created_at
        end = row.ended_at if row.ended_at is not None else (time.time() if now is None else now)
        alerts = list(session.scalars(select(ProctorAlert).where(ProctorAlert.session_id == session_id)))
        device = session.get(Device, row.device_id) if row.device_id else None
        gaps = [] if row.device_id is None else list(session.scalars(select(Gap).where(
            Gap.device_id == row.device_id, Gap.found_at >= start, Gap.found_at <= end + GAP_LATE)))
        timeline = SessionTimeline(row.session_id, row.exam_id, row.candidate_id, row.device_id, row.state,
                                   start, max(start, end), lost_events=_lost(gaps),
                                   placement_usable=_placement(device, start))
    grouped = _group(alerts)
    timeline.alerts = [a for a in grouped if a.kind != OFFLINE]
    timeline.offline = [(a.start, a.end) for a in grouped if a.kind == OFFLINE]
    timeline.pc_events = PcEvents(store).of(session_id)
    return timeline
