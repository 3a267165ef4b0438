"""The audit log: entries added in the action's transaction, read by cursor, never changed or removed."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, update
from sqlalchemy.exc import DBAPIError

from cloud_bridge import audit
from cloud_bridge.store import Store
from cloud_bridge.store.models import AuditEntry


def test_entries_in_order_by_cursor(store: Store) -> None:
    with store.session() as session, session.begin():
        audit.record(session, "staff:ana", "issue_code", "code:1", {"label": "room 4"}, at=10.0)
        audit.record(session, "staff:ana", "revoke", "unit-7", at=11.0)
        audit.record(session, "cli", "create_staff", "ben", at=12.0)
    first = audit.entries(store, limit=2)
    assert [(e["actor"], e["action"], e["target"], e["at"]) for e in first] == [
        ("staff:ana", "issue_code", "code:1", 10.0), ("staff:ana", "revoke", "unit-7", 11.0)]
    assert first[0]["detail"] == {"label": "room 4"}
    rest = audit.entries(store, after=first[-1]["id"])
    assert [e["target"] for e in rest] == ["ben"]


def test_an_action_rolled_back_leaves_no_entry(store: Store) -> None:
    with pytest.raises(RuntimeError), store.session() as session, session.begin():
        audit.record(session, "staff:ana", "revoke", "unit-7")
        raise RuntimeError("the action failed")
    assert audit.entries(store) == []


def test_unknown_action_is_refused(store: Store) -> None:
    with store.session() as session, pytest.raises(ValueError, match="unknown audit action"):
        audit.record(session, "staff:ana", "delete_everything", "x")


@pytest.mark.parametrize("statement", [update(AuditEntry).values(actor="someone else"), delete(AuditEntry)])
def test_the_database_refuses_to_change_or_remove_entries(store: Store, statement: object) -> None:
    with store.session() as session, session.begin():
        audit.record(session, "staff:ana", "revoke", "unit-7")
    with pytest.raises(DBAPIError, match="append-only"), store.session() as session, session.begin():
        session.execute(statement)  # type: ignore[call-overload]
    assert [e["actor"] for e in audit.entries(store)] == ["staff:ana"]
