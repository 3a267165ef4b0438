"""Reviewers' decisions on alerts and sessions: ``confirmed``, ``dismissed`` or ``second_look``, with a note, who
and when. Decisions are append-only (the database refuses UPDATE and DELETE, migration 0010): a new one on
the same alert (or session) supersedes the one before, which stays. Each is audited (``decide``).

When the exam's policy asks for two reviewers, a confirmation counts only once a second, different reviewer
has confirmed it too (the latest decision being a confirmation): until then its status is
``awaiting_second_review``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from cloud_bridge import audit
from cloud_bridge.refusal import Refused
from cloud_bridge.store import Store
from cloud_bridge.store.models import Decision, ExamPolicy, ExamSession, ProctorAlert

VERDICTS = ("confirmed", "dismissed", "second_look")
AWAITING = "awaiting_second_review"
MAX_NOTE = 2000


class DecisionError(Refused):
    """A decision that cannot be recorded."""


@dataclass(frozen=True)
class DecisionView:
    id: int
    alert_id: str | None
    verdict: str
    note: str
    reviewer: str
    decided_at: float
    supersedes: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "alert_id": self.alert_id, "verdict": self.verdict, "note": self.note,
                "reviewer": self.reviewer, "decided_at": self.decided_at, "supersedes": self.supersedes}


@dataclass(frozen=True)
class Status:
    """Where an alert (or the session) stands: its latest decision and what it counts as."""

    status: str  # undecided, confirmed, dismissed, second_look or awaiting_second_review
    latest: DecisionView | None
    history: tuple[DecisionView, ...]  # oldest first
    confirmed_by: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "latest": self.latest.as_dict() if self.latest else None,
                "confirmed_by": list(self.confirmed_by), "history": [d.as_dict() for d in self.history]}


def two_reviewers(store: Store, exam_id: str) -> bool:
    """Whether the exam's policy asks for a second reviewer's confirmation."""
    with store.session() as session:
        policy = session.get(ExamPolicy, exam_id)
        return bool(policy is not None and policy.two_reviewers)


def status_of(history: list[DecisionView], two: bool) -> Status:
    """The status of one alert's (or the session's) decisions, oldest first."""
    if not history:
        return Status("undecided", None, (), ())
    latest = history[-1]
    confirmers: list[str] = []
    for decision in history:  # the reviewers who confirmed since the last decision that was not a confirmation
        if decision.verdict != "confirmed":
            confirmers = []
        elif decision.reviewer not in confirmers:
            confirmers.append(decision.reviewer)
    status = latest.verdict
    if status == "confirmed" and two and len(confirmers) < 2:
        status = AWAITING
    return Status(status, latest, tuple(history), tuple(confirmers))


class Decisions:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store, self.clock = store, clock

    def decide(self, session_id: str, alert_id: str | None, verdict: object, note: object, reviewer: str,
               actor: str) -> DecisionView:
        """Record a decision (audited as ``actor``), superseding the latest one on the same alert or session."""
        if verdict not in VERDICTS:
            raise DecisionError("invalid", f"verdict must be one of {', '.join(VERDICTS)}")
        if not isinstance(note, str) or len(note) > MAX_NOTE:
            raise DecisionError("invalid", f"note must be text of up to {MAX_NOTE} characters")
        with self.store.session() as session, session.begin():
            row = session.get(ExamSession, session_id, with_for_update=True)  # one decision at a time per session
            if row is None:
                raise DecisionError("not_found", f"no session {session_id}", 404)
            if alert_id is not None and session.scalar(select(ProctorAlert.id).where(
                    ProctorAlert.session_id == session_id, ProctorAlert.alert_id == alert_id).limit(1)) is None:
                raise DecisionError("not_found", f"session {session_id} has no alert {alert_id}", 404)
            previous = session.scalar(select(Decision.id).where(
                Decision.session_id == session_id,
                Decision.alert_id.is_(None) if alert_id is None else Decision.alert_id == alert_id)
                .order_by(Decision.id.desc()).limit(1))
            decision = Decision(session_id=session_id, alert_id=alert_id, verdict=str(verdict), note=note,
                                reviewer=reviewer, decided_at=self.clock(), supersedes=previous)
            session.add(decision)
            session.flush()
            audit.record(session, actor, "decide", session_id, {"alert_id": alert_id, "verdict": verdict,
                                                                "decision": decision.id}, at=decision.decided_at)
            return DecisionView(decision.id, alert_id, decision.verdict, note, reviewer, decision.decided_at,
                                previous)

    def history(self, session_id: str) -> dict[str | None, list[DecisionView]]:
        """The session's decisions by alert id (None: on the session), oldest first."""
        out: dict[str | None, list[DecisionView]] = {}
        with self.store.session() as session:
            for row in session.scalars(select(Decision).where(Decision.session_id == session_id)
                                       .order_by(Decision.id)):
                out.setdefault(row.alert_id, []).append(DecisionView(
                    row.id, row.alert_id, row.verdict, row.note, row.reviewer, row.decided_at, row.supersedes))
        return out

    def statuses(self, session_id: str, exam_id: str) -> dict[str | None, Status]:
        """Every decided alert's status (and the session's, under None)."""
        two = two_reviewers(self.store, exam_id)
        return {alert: status_of(history, two) for alert, history in self.history(session_id).items()}
