"""Exam sessions: created by the PC exam client, paired with a camera unit by a one-time code, ended.

A session waits with a pairing code (shown as a QR code on the PC screen, or typed on the unit) until a
device sends that code; it is then bound to the device until it ends. A device serves one session at a
time: pairing it again ends nothing silently; the new pairing is refused until the old session ends.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud_bridge.store import Store
from cloud_bridge.store.models import Device, ExamSession
from cloud_bridge.units import pairing_refusal
from edge_app.protocol.commands import (
    MAX_PHOTO_BYTES,
    NAME,
    PAIR_CODE_ALPHABET,
    PAIR_CODE_LENGTH,
    normalize_code,
    qr_payload,
)
from edge_app.rules.config import override_problems

JPEG_MAGIC = b"\xff\xd8\xff"
# Runs inside the transaction that pairs or ends a session (the commands to the unit go in the same one).
Also = Callable[[Session, ExamSession], None]
MAX_RULES_BYTES = 16 * 1024  # the rule overrides travel in session_start beside the photo


class SessionError(ValueError):
    """A request that cannot be done; ``reason`` is a short code, the message says why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class SessionView:
    session_id: str
    exam_id: str
    candidate_id: str
    state: str
    device_id: str | None
    pairing_code: str | None
    code_expires_at: float
    created_at: float
    paired_at: float | None
    ended_at: float | None

    @property
    def qr_payload(self) -> str | None:
        return qr_payload(self.pairing_code) if self.pairing_code else None

    @classmethod
    def of(cls, row: ExamSession) -> SessionView:
        code = row.pairing_code if row.state == "waiting" else None  # kept while paired, shown while waiting
        return cls(row.session_id, row.exam_id, row.candidate_id, row.state, row.device_id, code,
                   row.code_expires_at, row.created_at, row.paired_at, row.ended_at)


def new_code() -> str:
    return "".join(secrets.choice(PAIR_CODE_ALPHABET) for _ in range(PAIR_CODE_LENGTH))


class Sessions:
    def __init__(self, store: Store, pairing_ttl: float = 900.0, clock: Callable[[], float] = time.time) -> None:
        self.store, self.pairing_ttl, self.clock = store, pairing_ttl, clock
        self.min_software_version: str | None = None  # the config's floor (cloud_bridge.units)
        self.base_rules: dict[str, object] = {}  # the bridge's own rules, under every session's (Services.build)

    def create(self, exam_id: str, candidate_id: str, photo: bytes, rules: str | None = None) -> SessionView:
        for field, value in (("exam_id", exam_id), ("candidate_id", candidate_id)):
            if not isinstance(value, str) or not NAME.fullmatch(value):
                raise SessionError("invalid", f"{field} must be 1-64 of letters, digits, '.', '_' and '-'")
        if not photo.startswith(JPEG_MAGIC):
            raise SessionError("invalid", "photo must be a JPEG image")
        if len(photo) > MAX_PHOTO_BYTES:  # it must fit in the signed session_start command
            raise SessionError("too_large", f"photo over {MAX_PHOTO_BYTES} bytes")
        if rules is not None and len(rules.encode("utf-8")) > MAX_RULES_BYTES:
            raise SessionError("too_large", f"rules over {MAX_RULES_BYTES} bytes of JSON")
        if rules is not None:  # checked as the unit checks them, with the bridge's rules under them as they go
            try:
                override = json.loads(rules)
            except ValueError:
                raise SessionError("invalid", "rules must be JSON (the unit's rules section)") from None
            problems = override_problems({**self.base_rules, **override} if isinstance(override, dict) else override)
            if problems:
                raise SessionError("invalid", "rules the unit would refuse: " + "; ".join(problems)[:1000])
        now = self.clock()
        for _ in range(5):  # a code collision with another waiting session: draw again
            row = ExamSession(session_id=uuid.uuid4().hex, exam_id=exam_id, candidate_id=candidate_id,
                              state="waiting", pairing_code=new_code(), code_expires_at=now + self.pairing_ttl,
                              photo=photo, rules=rules, created_at=now)
            try:
                with self.store.session() as session, session.begin():
                    session.add(row)
                return SessionView.of(row)
            except IntegrityError:
                continue
        raise SessionError("busy", "could not draw a free pairing code")

    def get(self, session_id: str) -> SessionView | None:
        with self.store.session() as session:
            row = session.get(ExamSession, session_id)
            return SessionView.of(row) if row else None

    def for_exam(self, exam_id: str) -> list[SessionView]:
        with self.store.session() as session:
            rows = session.scalars(select(ExamSession).where(ExamSession.exam_id == exam_id)
                                   .order_by(ExamSession.created_at)).all()
            return [SessionView.of(row) for row in rows]

    def active_for_device(self, device_id: str) -> SessionView | None:
        with self.store.session() as session:
            row = session.scalar(select(ExamSession).where(ExamSession.device_id == device_id,
                                                           ExamSession.state == "paired"))
            return SessionView.of(row) if row else None

    def photo(self, session_id: str) -> bytes:
        with self.store.session() as session:
            row = session.get(ExamSession, session_id)
            return row.photo if row else b""

    def rules(self, session_id: str) -> str | None:
        with self.store.session() as session:
            row = session.get(ExamSession, session_id)
            return row.rules if row else None

    def pair(self, device_id: str, typed_code: str, also: Also | None = None) -> SessionView:
        """Bind the waiting session with this code to the device; SessionError says why not. ``also(session,
        row)`` runs in the pairing transaction (again for a resent request)."""
        code = normalize_code(typed_code)
        now = self.clock()
        with self.store.session() as session, session.begin():
            # the device row lock keeps two workers from pairing one device with two sessions at once
            if session.get(Device, device_id, with_for_update=True) is None:
                raise SessionError("unknown_device", f"device {device_id} is not registered")
            refusal = pairing_refusal(session, device_id, self.min_software_version)  # revoked, or outdated
            if refusal is not None:
                raise SessionError(*refusal)
            row = session.scalar(select(ExamSession).where(ExamSession.pairing_code == code).with_for_update())
            if row is not None and row.state == "paired" and row.device_id == device_id:
                if also is not None:
                    also(session, row)
                return SessionView.of(row)  # the same request again (a resend): the same answer
            if row is None or row.state != "waiting":
                raise SessionError("unknown_code", "no session waits for this pairing code")
            if row.code_expires_at < now:
                raise SessionError("expired_code", "the pairing code has expired: create a new session")
            busy = session.scalar(select(ExamSession).where(ExamSession.device_id == device_id,
                                                            ExamSession.state == "paired"))
            if busy is not None:
                raise SessionError("device_busy", f"device {device_id} is paired with session {busy.session_id}; "
                                   "end that session first")
            row.state, row.device_id, row.paired_at = "paired", device_id, now  # the code stays until the end
            if also is not None:
                also(session, row)
            return SessionView.of(row)

    def end(self, session_id: str, also: Also | None = None) -> SessionView:
        """End the session; ``also(session, row)`` runs in that transaction when it was paired to a device."""
        with self.store.session() as session, session.begin():
            row = session.get(ExamSession, session_id, with_for_update=True)
            if row is None:
                raise SessionError("not_found", f"no session {session_id}")
            if row.state != "ended":
                was_paired = row.state == "paired" and row.device_id is not None
                row.state, row.ended_at, row.pairing_code = "ended", self.clock(), None
                if was_paired and also is not None:
                    also(session, row)
            return SessionView.of(row)
