"""Staff accounts (test-centre staff who enrol, watch and revoke units), separate from the API's tokens.

A password is kept as an scrypt hash (``scrypt$<log2 n>$<r>$<p>$<salt>$<hash>``, base64); logging in gives a
random bearer token of which only the SHA-256 is kept, valid for ``session_ttl`` seconds. Every staff
account is created by another one (audited) or from the command line (``python -m cloud_bridge staff add``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable

from sqlalchemy import delete, select

from cloud_bridge import audit
from cloud_bridge.store import Store
from cloud_bridge.store.models import StaffSession, StaffUser
from cloud_bridge.tokens import token_hash

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD, MAX_PASSWORD = 12, 256
SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P = 15, 8, 1  # 32 MiB and about 0.1 s a hash
SALT_BYTES = 16
ROLES = ("staff", "reviewer")  # reviewer: review only, of assigned exams (cloud_bridge/review_access.py)
DUMMY_HASH = "scrypt$15$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA"  # an unknown user costs a hash too


class StaffError(ValueError):
    """A staff request that cannot be done; ``reason`` is a short code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def hash_password(password: str, log_n: int = SCRYPT_LOG_N, salt: bytes | None = None) -> str:
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**log_n, r=SCRYPT_R, p=SCRYPT_P,
                            maxmem=2**log_n * SCRYPT_R * 128 * 2, dklen=32)
    return (f"scrypt${log_n}${SCRYPT_R}${SCRYPT_P}${base64.b64encode(salt).decode()}$"
            f"{base64.b64encode(digest).decode()}")


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches an scrypt hash from :func:`hash_password` (compared in constant time)."""
    try:
        scheme, log_n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt" or not (10 <= int(log_n) <= 20):
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=2 ** int(log_n), r=int(r),
                             p=int(p), maxmem=2 ** int(log_n) * int(r) * 128 * 2, dklen=len(want) or 32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def password_problem(password: object) -> str | None:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        return f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters"
    return None


class Staff:
    def __init__(self, store: Store, session_ttl: float = 12 * 3600.0, log_n: int = SCRYPT_LOG_N,
                 clock: Callable[[], float] = time.time) -> None:
        self.store, self.session_ttl, self.log_n, self.clock = store, session_ttl, log_n, clock

    def create(self, username: object, password: object, actor: str, role: object = "staff") -> str:
        """Add an account (audited as ``actor``) of ``role``: ``staff`` or ``reviewer`` (review only, of the exams
        assigned to it); its name. StaffError says why not."""
        if role not in ROLES:
            raise StaffError("invalid", f"role must be one of {', '.join(ROLES)}")
        if not isinstance(username, str) or not USERNAME.fullmatch(username):
            raise StaffError("invalid", "a staff user name is 2-64 of a-z, 0-9, '.', '_' and '-'")
        problem = password_problem(password)
        if problem:
            raise StaffError("invalid", problem)
        assert isinstance(password, str)
        hashed = hash_password(password, self.log_n)
        with self.store.session() as session, session.begin():
            if session.scalar(select(StaffUser.id).where(StaffUser.username == username)) is not None:
                raise StaffError("exists", f"staff user {username} exists already")
            session.add(StaffUser(username=username, password_hash=hashed, created_at=self.clock(), disabled=False,
                                  role=str(role)))
            audit.record(session, actor, "create_staff", username, {"role": role} if role != "staff" else None,
                         at=self.clock())
        return username

    def any(self) -> bool:
        with self.store.session() as session:
            return session.scalar(select(StaffUser.id).limit(1)) is not None

    def login(self, username: object, password: object) -> tuple[str, float]:
        """A new bearer token and its expiry; StaffError ``invalid_credentials`` for a wrong name or password."""
        name = username if isinstance(username, str) else ""
        with self.store.session() as session:
            user = session.scalar(select(StaffUser).where(StaffUser.username == name))
        ok = verify_password(password if isinstance(password, str) else "",
                             user.password_hash if user is not None else DUMMY_HASH)
        if user is None or user.disabled or not ok:
            raise StaffError("invalid_credentials", "wrong user name or password")
        token, now = secrets.token_urlsafe(32), self.clock()
        with self.store.session() as session, session.begin():
            session.execute(delete(StaffSession).where(StaffSession.expires_at < now))  # forget stale logins
            session.add(StaffSession(token_hash=token_hash(token), username=name, created_at=now,
                                     expires_at=now + self.session_ttl))
        return token, now + self.session_ttl

    def role(self, username: str) -> str | None:
        """The role of an enabled account, or None."""
        with self.store.session() as session:
            user = session.scalar(select(StaffUser).where(StaffUser.username == username))
            return user.role if user is not None and not user.disabled else None

    def who(self, token: str) -> str | None:
        """The staff user a live login token belongs to, or None."""
        if not token:
            return None
        with self.store.session() as session:
            row = session.get(StaffSession, token_hash(token))
            if row is None or row.expires_at < self.clock():
                return None
            user = session.scalar(select(StaffUser).where(StaffUser.username == row.username))
            return row.username if user is not None and not user.disabled else None

    def logout(self, token: str) -> None:
        with self.store.session() as session, session.begin():
            session.execute(delete(StaffSession).where(StaffSession.token_hash == token_hash(token)))
