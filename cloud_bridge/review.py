"""What the review pages and their JSON show: an exam's sessions ranked by risk score (with the breakdown), and
one session's timeline, score, alerts in queue order and decisions."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from cloud_bridge.decisions import Decisions, Status
from cloud_bridge.risk import RiskScore, RiskWeights, risk_score
from cloud_bridge.store import Store
from cloud_bridge.store.models import ExamSession, ProctorAlert
from cloud_bridge.timeline import SessionTimeline, build

MAX_SESSIONS = 2000  # one exam's sessions on one page


@dataclass
class SessionReview:
    timeline: SessionTimeline
    score: RiskScore
    statuses: dict[str | None, Status]

    @property
    def decided(self) -> int:
        """Alerts with a decision (the session's own not counted)."""
        return sum(1 for alert in self.timeline.alerts if alert.alert_id in self.statuses)

    def session_status(self) -> str:
        status = self.statuses.get(None)
        return status.status if status is not None else "undecided"

    def alert_status(self, alert_id: str) -> Status:
        return self.statuses.get(alert_id) or Status("undecided", None, (), ())

    def summary(self) -> dict[str, Any]:
        t = self.timeline
        return {"session_id": t.session_id, "candidate_id": t.candidate_id, "device_id": t.device_id,
                "state": t.state, "start": t.start, "end": t.end, **self.score.as_dict(),
                "alerts": len(t.alerts), "decided": self.decided, "pc_events": len(t.pc_events),
                "status": self.session_status()}

    def as_dict(self) -> dict[str, Any]:
        data = self.timeline.as_dict()
        for alert in data["alerts"]:
            alert["decision"] = self.alert_status(alert["alert_id"]).as_dict()
        data["risk"] = self.score.as_dict()
        data["decision"] = (self.statuses.get(None) or Status("undecided", None, (), ())).as_dict()
        return data


def session_review(store: Store, session_id: str, weights: RiskWeights, now: float | None = None
                   ) -> SessionReview | None:
    timeline = build(store, session_id, time.time() if now is None else now)
    if timeline is None:
        return None
    return SessionReview(timeline, risk_score(timeline.risk_timeline(), weights),
                         Decisions(store).statuses(session_id, timeline.exam_id))


def rank_exam(store: Store, exam_id: str, weights: RiskWeights, now: float | None = None) -> list[SessionReview]:
    """The exam's sessions, riskiest first (then by candidate)."""
    with store.session() as session:
        ids = session.scalars(select(ExamSession.session_id).where(ExamSession.exam_id == exam_id)
                              .order_by(ExamSession.created_at).limit(MAX_SESSIONS)).all()
    reviews = [r for r in (session_review(store, sid, weights, now) for sid in ids) if r is not None]
    return sorted(reviews, key=lambda r: (-r.score.score, -sum(d.points for d in r.score.dimensions),
                                          r.timeline.candidate_id))


def evidence_session(store: Store, session_id: str, digest: str) -> bool:
    """Whether one of the session's alerts carries the snapshot."""
    with store.session() as session:
        return session.scalar(select(ProctorAlert.id).where(ProctorAlert.session_id == session_id,
                                                            ProctorAlert.evidence == digest).limit(1)) is not None
