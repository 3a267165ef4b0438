"""Who may review what. Staff accounts have a role: ``staff`` (fleet, enrolment, retention, assignments; they
see every exam) or ``reviewer`` (review only, of the exams staff assigned to them). Proctor API tokens keep
their own scope: the exams they name. Assignments are audited."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select

from cloud_bridge import audit
from cloud_bridge.refusal import Refused
from cloud_bridge.store import Store
from cloud_bridge.store.models import ExamAssignment, ExamSession, StaffUser
from edge_app.protocol.commands import NAME

ROLES = ("staff", "reviewer")


class AccessError(Refused):
    """A refused assignment: ``reason`` a short code, ``status`` the HTTP status."""


@dataclass(frozen=True)
class Viewer:
    """Whoever asks: ``actor`` as the audit log names them, the exams they see (None: every exam), and
    whether they may record decisions (staff and reviewer accounts; not API tokens)."""

    actor: str
    exams: frozenset[str] | None
    decides: bool
    name: str

    @property
    def staff(self) -> bool:
        """A staff account's login (they see every exam; a reviewer sees assigned ones, a token its own)."""
        return self.actor.startswith("staff:") and self.exams is None

    def sees(self, exam_id: str) -> bool:
        return self.exams is None or exam_id in self.exams


def role_of(store: Store, username: str) -> str | None:
    """The role of an enabled account, or None."""
    with store.session() as session:
        user = session.scalar(select(StaffUser).where(StaffUser.username == username))
        return user.role if user is not None and not user.disabled else None


def assigned(store: Store, username: str) -> frozenset[str]:
    with store.session() as session:
        return frozenset(session.scalars(select(ExamAssignment.exam_id).where(ExamAssignment.username == username)))


def staff_viewer(store: Store, username: str) -> Viewer | None:
    """The viewer of a logged-in account: staff see every exam, a reviewer their assigned ones."""
    role = role_of(store, username)
    if role is None:
        return None
    exams = None if role == "staff" else assigned(store, username)
    return Viewer(f"staff:{username}", exams, True, username)


def token_viewer(label: str, exams: frozenset[str]) -> Viewer:
    """A proctor token's viewer: its exams, read-only."""
    return Viewer(f"token:{label}", exams, False, label)


def reviewers(store: Store, exam_id: str) -> list[str]:
    with store.session() as session:
        return sorted(session.scalars(select(ExamAssignment.username).where(ExamAssignment.exam_id == exam_id)))


def _check(store: Store, username: object, exam_id: object) -> tuple[str, str]:
    if not isinstance(exam_id, str) or not NAME.fullmatch(exam_id):
        raise AccessError("invalid", "exam_id must be 1-64 of letters, digits, '.', '_' and '-'")
    if not isinstance(username, str) or role_of(store, username) != "reviewer":
        raise AccessError("not_found", f"no reviewer account {str(username)[:64]!r}", 404)
    return username, exam_id


def assign(store: Store, username: object, exam_id: object, actor: str) -> bool:
    """Let the reviewer review the exam (audited); False if they could already."""
    name, exam = _check(store, username, exam_id)
    with store.session() as session, session.begin():
        if session.scalar(select(ExamAssignment.id).where(ExamAssignment.username == name,
                                                          ExamAssignment.exam_id == exam)) is not None:
            return False
        session.add(ExamAssignment(username=name, exam_id=exam))
        audit.record(session, actor, "assign", exam, {"reviewer": name, "assigned": True})
    return True


def unassign(store: Store, username: object, exam_id: object, actor: str) -> bool:
    """Take the exam from the reviewer (audited); False if it was not theirs."""
    name, exam = _check(store, username, exam_id)
    with store.session() as session, session.begin():
        found = session.scalar(select(ExamAssignment.id).where(ExamAssignment.username == name,
                                                               ExamAssignment.exam_id == exam))
        if found is None:
            return False
        session.execute(delete(ExamAssignment).where(ExamAssignment.id == found))
        audit.record(session, actor, "assign", exam, {"reviewer": name, "assigned": False})
    return True


def visible_exams(store: Store, viewer: Viewer) -> list[str]:
    """The exams with sessions this viewer may review."""
    with store.session() as session:
        exams = session.scalars(select(ExamSession.exam_id).distinct().order_by(ExamSession.exam_id)).all()
    return [exam for exam in exams if viewer.sees(exam)]
