"""Bearer tokens for the HTTP API. No default token exists: ``python -m cloud_bridge token create`` makes
one and prints it once; only its SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterable

from sqlalchemy import select

from cloud_bridge.store import Store
from cloud_bridge.store.models import ApiToken

ROLES = ("client", "proctor")  # client: the PC exam software; proctor: alerts, pages and evidence


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


class Tokens:
    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, role: str, label: str) -> str:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        token = secrets.token_urlsafe(32)
        with self.store.session() as session, session.begin():
            session.add(ApiToken(token_hash=_hash(token), role=role, label=label[:64], created_at=time.time()))
        return token

    def role(self, token: str) -> str | None:
        """The role of a valid, unrevoked token; None otherwise."""
        if not token or len(token) > 200:
            return None
        with self.store.session() as session:
            row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _hash(token),
                                                        ApiToken.revoked.is_(False)))
            return row.role if row else None

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
