"""What staff decide about an exam and its evidence: the exam's review and retention policy, and the release of a
confirmed session's evidence (then retention may purge it). Both audited, in the action's own transaction."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from cloud_bridge import audit
from cloud_bridge.refusal import Refused, refuse_unknown
from cloud_bridge.store import Store
from cloud_bridge.store.models import ExamPolicy, ExamSession, SessionRelease
from edge_app.protocol.commands import NAME

MAX_NOTE = 2000
LIMITS = {"retention_days": (1, 3650), "dismissed_grace_hours": (0, 24 * 365)}


class PolicyError(Refused):
    """A policy or release that cannot be had: ``reason`` and the HTTP ``status``."""


def policy_json(row: ExamPolicy | None, exam_id: str, defaults: dict[str, float]) -> dict[str, Any]:
    """An exam's policy as the API shows it (the config's defaults where it has none of its own)."""
    if row is None:
        return {"exam_id": exam_id, "retention_days": defaults["retention_days"],
                "dismissed_grace_hours": defaults["dismissed_grace_hours"], "two_reviewers": False,
                "set_at": None, "set_by": None}
    return {"exam_id": exam_id, "retention_days": row.retention_days,
            "dismissed_grace_hours": row.dismissed_grace_hours, "two_reviewers": row.two_reviewers,
            "set_at": row.set_at, "set_by": row.set_by}


def _number(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    low, high = LIMITS[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise PolicyError("invalid", f"{name} must be a number from {low} to {high}")
    return float(value)


class Policies:
    def __init__(self, store: Store, defaults: dict[str, float], clock: Callable[[], float] = time.time) -> None:
        """``defaults``: retention_days and dismissed_grace_hours of an exam without a policy (``[retention]``)."""
        self.store, self.defaults, self.clock = store, defaults, clock

    def get(self, exam_id: str) -> dict[str, Any]:
        with self.store.session() as session:
            return policy_json(session.get(ExamPolicy, exam_id), exam_id, self.defaults)

    def set(self, exam_id: str, body: object, actor: str) -> dict[str, Any]:
        """Set some or all of the exam's policy (fields not given keep their value); audited as ``actor``."""
        if not NAME.fullmatch(exam_id):
            raise PolicyError("invalid", "exam_id must be 1-64 of letters, digits, '.', '_' and '-'")
        if not isinstance(body, dict) or not body:
            raise PolicyError("invalid", "the body is an object with retention_days, dismissed_grace_hours and/or "
                              "two_reviewers")
        refuse_unknown(body, {"retention_days", "dismissed_grace_hours", "two_reviewers"}, PolicyError)
        days, grace = _number(body, "retention_days"), _number(body, "dismissed_grace_hours")
        two = body.get("two_reviewers")
        if two is not None and not isinstance(two, bool):
            raise PolicyError("invalid", "two_reviewers must be true or false")
        now = self.clock()
        with self.store.session() as session, session.begin():
            row = session.get(ExamPolicy, exam_id, with_for_update=True)
            if row is None:
                row = ExamPolicy(exam_id=exam_id, retention_days=int(self.defaults["retention_days"]),
                                 dismissed_grace_hours=self.defaults["dismissed_grace_hours"], two_reviewers=False,
                                 set_at=now, set_by=actor[:64])
                session.add(row)
            if days is not None:
                row.retention_days = int(days)
            if grace is not None:
                row.dismissed_grace_hours = grace
            if two is not None:
                row.two_reviewers = two
            row.set_at, row.set_by = now, actor[:64]
            session.flush()
            shown = policy_json(row, exam_id, self.defaults)
            audit.record(session, actor, "set_policy", exam_id, {k: shown[k] for k in (
                "retention_days", "dismissed_grace_hours", "two_reviewers")}, at=now)
        return shown

    def release(self, session_id: str, note: object, actor: str) -> dict[str, Any]:
        """Release an ended session's evidence (confirmed evidence is kept until then); audited. Once only."""
        if not isinstance(note, str) or len(note) > MAX_NOTE:
            raise PolicyError("invalid", f"note (why it is released) must be text of at most {MAX_NOTE} characters")
        now = self.clock()
        with self.store.session() as session, session.begin():
            row = session.get(ExamSession, session_id)
            if row is None:
                raise PolicyError("not_found", f"no session {session_id}", 404)
            if row.state != "ended":
                raise PolicyError("not_ended", "a session's evidence is released only after it ended", 409)
            if session.scalar(select(SessionRelease.session_id).where(
                    SessionRelease.session_id == session_id)) is not None:
                raise PolicyError("released", f"session {session_id} was released already", 409)
            session.add(SessionRelease(session_id=session_id, released_by=actor[:64], released_at=now, note=note))
            audit.record(session, actor, "release", session_id, {"note": note[:200]}, at=now)
            return {"session_id": session_id, "exam_id": row.exam_id, "released_by": actor[:64],
                    "released_at": now, "note": note}
