"""Bearer tokens for the HTTP API. No default token exists: ``python -m cloud_bridge token create`` makes
one and prints it once; only its SHA-256 is stored. A proctor token names the exams it may see."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from cloud_bridge.store import Store
from cloud_bridge.store.models import ApiToken
from edge_app.protocol.commands import NAME

ROLES = ("client", "proctor")  # client: the PC exam software; proctor: alerts, pages and evidence of its exams
MAX_EXAMS = 200


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class Grant:
    """What a valid token may do: its role, and for a proctor the exams it may see."""

    role: str
    exams: frozenset[str]
    label: str

    def sees(self, exam_id: str) -> bool:
        """Whether this token may see the exam: a client sees every exam (it creates their sessions)."""
        return self.role == "client" or exam_id in self.exams


def _exams(role: str, exams: Iterable[str]) -> list[str]:
    named = sorted(set(exams))
    if role == "proctor" and not named:
        raise ValueError("a proctor token must name the exams it may see (--exam EXAM, once per exam)")
    if role != "proctor" and named:
        raise ValueError(f"a {role} token names no exams")
    bad = [exam for exam in named if not NAME.fullmatch(exam)]
    if bad:
        raise ValueError(f"not exam ids: {', '.join(map(repr, bad))} (1-64 of A-Z a-z 0-9 . _ -)")
    if len(named) > MAX_EXAMS:
        raise ValueError(f"at most {MAX_EXAMS} exams per token")
    return named


class Tokens:
    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, role: str, label: str, exams: Iterable[str] = ()) -> str:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        named = _exams(role, exams)
        token = secrets.token_urlsafe(32)
        with self.store.session() as session, session.begin():
            session.add(ApiToken(token_hash=token_hash(token), role=role, label=label[:64],
                                 exams=json.dumps(named) if named else None, created_at=time.time()))
        return token

    def grant(self, token: str) -> Grant | None:
        """What a valid, unrevoked token may do; None otherwise."""
        if not token or len(token) > 200:
            return None
        with self.store.session() as session:
            row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(token),
                                                        ApiToken.revoked.is_(False)))
            if row is None:
                return None
            return Grant(row.role, frozenset(json.loads(row.exams) if row.exams else ()), row.label)

    def role(self, token: str) -> str | None:
        """The role of a valid, unrevoked token; None otherwise."""
        grant = self.grant(token)
        return grant.role if grant else None

    def allows(self, token: str, roles: Iterable[str]) -> bool:
        return self.role(token) in set(roles)

    def revoke(self, label: str) -> int:
        with self.store.session() as session, session.begin():
            rows = session.scalars(select(ApiToken).where(ApiToken.label == label)).all()
            for row in rows:
                row.revoked = True
            return len(rows)

    def any(self) -> bool:
        with self.store.session() as session:
            return session.scalar(select(ApiToken.id).where(ApiToken.revoked.is_(False)).limit(1)) is not None
