"""The append-only log of staff actions: who did what, to which target, and when.

Entries are only ever added (:func:`record`, in the transaction of the action itself, so an action and its
entry are kept or lost together) and read (:func:`entries`); the database refuses UPDATE and DELETE on the
table (triggers of migration 0009)."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud_bridge.store import Store
from cloud_bridge.store.models import AuditEntry

ACTIONS = ("create_staff", "issue_code", "revoke", "set_min_version", "enrol", "read_evidence", "decide", "assign",
           "set_policy", "release", "purge", "export", "login", "login_failed", "lockout", "unlock")
MAX_PAGE = 500


def record(session: Session, actor: str, action: str, target: str, detail: dict[str, Any] | None = None,
           at: float | None = None) -> None:
    """Add an entry in ``session``'s transaction; ``actor`` is ``staff:<name>``, ``cli``, ``unit:<id>``, or
    ``anonymous`` (a login under a name no account has)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r} (one of {', '.join(ACTIONS)})")
    session.add(AuditEntry(at=time.time() if at is None else at, actor=actor[:80], action=action,
                           target=target[:80], detail=json.dumps(detail or {}, sort_keys=True)))


def entries(store: Store, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
    """Entries with an id above ``after`` (a cursor), oldest first, at most ``limit`` (1-500)."""
    limit = max(1, min(limit, MAX_PAGE))
    with store.session() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.id > after).order_by(AuditEntry.id)
                               .limit(limit)).all()
        return [_entry(row) for row in rows]


def latest(store: Store, count: int = 50) -> list[dict[str, Any]]:
    """The ``count`` (1-500) most recent entries, newest first."""
    count = max(1, min(count, MAX_PAGE))
    with store.session() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(count)).all()
        return [_entry(row) for row in rows]


def _entry(row: AuditEntry) -> dict[str, Any]:
    return {"id": row.id, "at": row.at, "actor": row.actor, "action": row.action, "target": row.target,
            "detail": json.loads(row.detail or "{}")}
