"""Staff accounts (test-centre staff who enrol, watch and revoke units), separate from the API's tokens.

A password is kept as an scrypt hash (``scrypt$<log2 n>$<r>$<p>$<salt>$<hash>``, base64); logging in gives a
random bearer token of which only the SHA-256 is kept, valid for ``session_ttl`` seconds. Every staff
account is created by another one (audited) or from the command line (``python -m cloud_bridge staff add``).

After ``lockout_after`` failed logins in a row an account is locked for ``lockout_seconds``: every login is
refused (``locked``, even with the right password) until then, or until staff unlock it. The count and the lock
live in the account's row, changed by single UPDATEs, so restarts and several bridge workers share them. Every
login, failed login, lockout and unlock is audited; a name no account has is answered as a wrong password
(after the same hash), locks nothing and creates nothing but its audit entry (actor ``anonymous``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, case, delete, select, update

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
LOCKOUT_AFTER, LOCKOUT_SECONDS = 10, 900.0  # failed logins in a row that lock an account, and for how long
ANONYMOUS = "anonymous"  # the audit actor of a login under a name no account has
NOT_A_NAME = "(not a user name)"  # its audit target when what was typed cannot be a name (a password, perhaps)


class StaffError(ValueError):
    """A staff request that cannot be done; ``reason`` is a short code."""

    def __init__(self, reason: str, detail: str, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.reason, self.retry_after = reason, retry_after  # retry_after: whole seconds until a lock ends


def wait_words(seconds: float) -> str:
    """A wait as people read it, rounded up: ``40 seconds``, ``1 minute``, ``15 minutes``."""
    whole = max(1, math.ceil(seconds))
    count, unit = (whole, "second") if whole < 60 else (math.ceil(whole / 60), "minute")
    return f"{count} {unit}{'' if count == 1 else 's'}"


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


def _unlocked(now: float) -> ColumnElement[bool]:
    """SQL: the account is not locked at ``now`` (never was, or its lock has ended)."""
    return StaffUser.locked_until.is_(None) | (StaffUser.locked_until <= now)


class Staff:
    def __init__(self, store: Store, session_ttl: float = 12 * 3600.0, log_n: int = SCRYPT_LOG_N,
                 clock: Callable[[], float] = time.time, lockout_after: int = LOCKOUT_AFTER,
                 lockout_seconds: float = LOCKOUT_SECONDS) -> None:
        if lockout_after < 1 or lockout_seconds <= 0:
            raise ValueError("lockout_after must be at least 1 and lockout_seconds positive")
        self.store, self.session_ttl, self.log_n, self.clock = store, session_ttl, log_n, clock
        self.lockout_after, self.lockout_seconds = lockout_after, lockout_seconds

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

    def login(self, username: object, password: object, source: str = "") -> tuple[str, float]:
        """A new bearer token and its expiry. StaffError ``invalid_credentials`` for a wrong name or password,
        ``locked`` (with ``retry_after``) while the account is locked. ``source`` (the caller's address) goes
        into the audit entry."""
        name = username if isinstance(username, str) else ""
        where = {"from": source[:64]} if source else {}
        with self.store.session() as session:
            user = session.scalar(select(StaffUser).where(StaffUser.username == name))
        if user is not None and user.locked_until is not None and user.locked_until > self.clock():
            raise self._refused_while_locked(name, where)  # no hash: nothing is tried while it is locked
        ok = verify_password(password if isinstance(password, str) else "",
                             user.password_hash if user is not None else DUMMY_HASH)
        if user is None or user.disabled:
            target = name if user is not None or USERNAME.fullmatch(name) else NOT_A_NAME
            with self.store.session() as session, session.begin():
                audit.record(session, ANONYMOUS if user is None else f"staff:{name}", "login_failed", target,
                             {"reason": "unknown_user" if user is None else "disabled", **where}, at=self.clock())
            raise StaffError("invalid_credentials", "wrong user name or password")
        if not ok:
            raise self._failed(user.id, name, where)
        token, now = secrets.token_urlsafe(32), self.clock()
        with self.store.write_transaction() as session:
            cleared = session.execute(update(StaffUser).where(StaffUser.id == user.id, _unlocked(now))
                                      .values(failed_logins=0, locked_until=None).returning(StaffUser.id)
                                      .execution_options(synchronize_session=False)).first()
            if cleared is not None:  # else another worker locked it while the password was checked
                session.execute(delete(StaffSession).where(StaffSession.expires_at < now))  # forget stale logins
                session.add(StaffSession(token_hash=token_hash(token), username=name, created_at=now,
                                         expires_at=now + self.session_ttl))
                audit.record(session, f"staff:{name}", "login", name, where or None, at=now)
        if cleared is None:
            raise self._refused_while_locked(name, where)
        return token, now + self.session_ttl

    def _failed(self, user_id: int, name: str, where: dict[str, Any]) -> StaffError:
        """Count a wrong password in one UPDATE (a lock that has ended starts the count again) and lock the
        account at ``lockout_after``; audited. The error to raise."""
        now = self.clock()
        counted = case((StaffUser.locked_until.is_not(None), 0), else_=StaffUser.failed_logins) + 1
        with self.store.write_transaction() as session:
            row = session.execute(
                update(StaffUser).where(StaffUser.id == user_id, _unlocked(now))
                .values(failed_logins=counted,
                        locked_until=case((counted >= self.lockout_after, now + self.lockout_seconds), else_=None))
                .returning(StaffUser.failed_logins, StaffUser.locked_until)
                .execution_options(synchronize_session=False)).first()
            if row is not None:
                actor = f"staff:{name}"
                audit.record(session, actor, "login_failed", name, {"reason": "wrong_password",
                                                                    "failures": row.failed_logins, **where}, at=now)
                if row.locked_until is not None:
                    audit.record(session, actor, "lockout", name, {"failures": row.failed_logins,
                                                                   "until": row.locked_until}, at=now)
        if row is None:  # locked by another worker since it was read
            return self._refused_while_locked(name, where)
        if row.locked_until is not None:
            return self._locked(row.locked_until - now)
        return StaffError("invalid_credentials", "wrong user name or password")

    def _refused_while_locked(self, name: str, where: dict[str, Any]) -> StaffError:
        """Audit a login refused because the account is locked; the ``locked`` error."""
        now = self.clock()
        with self.store.session() as session, session.begin():
            until = session.scalar(select(StaffUser.locked_until).where(StaffUser.username == name)) or now
            audit.record(session, f"staff:{name}", "login_failed", name, {"reason": "locked", "until": until,
                                                                          **where}, at=now)
        return self._locked(until - now)

    def _locked(self, left: float) -> StaffError:
        seconds = max(1, math.ceil(left))
        wait = wait_words(seconds) + (f" ({seconds} s)" if seconds >= 60 else "")
        return StaffError("locked", f"the account is locked after {self.lockout_after} failed logins in a row: "
                          f"try again in {wait}, or ask staff to unlock it", retry_after=seconds)

    def locked(self) -> list[dict[str, Any]]:
        """The accounts locked now, the soonest to unlock first: name, role, failed logins, lock end."""
        now = self.clock()
        with self.store.session() as session:
            rows = session.execute(select(StaffUser.username, StaffUser.role, StaffUser.failed_logins,
                                          StaffUser.locked_until).where(StaffUser.locked_until > now)
                                   .order_by(StaffUser.locked_until)).all()
        return [{"username": r.username, "role": r.role, "failures": r.failed_logins, "locked_until": r.locked_until}
                for r in rows]

    def unlock(self, username: object, actor: str) -> dict[str, Any]:
        """Clear an account's failed logins and lock (audited as ``actor``): whether it was locked and the failed
        logins it had. StaffError ``not_found`` for a name no account has."""
        name = username if isinstance(username, str) else ""
        now = self.clock()
        with self.store.write_transaction() as session:
            user = session.scalar(select(StaffUser).where(StaffUser.username == name).with_for_update())
            if user is None:
                raise StaffError("not_found", f"no staff user {name[:64]}")
            was_locked, failures = user.locked_until is not None and user.locked_until > now, user.failed_logins
            user.failed_logins, user.locked_until = 0, None
            audit.record(session, actor, "unlock", name, {"was_locked": was_locked, "failures": failures}, at=now)
        return {"username": name, "was_locked": was_locked, "failures": failures}

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
