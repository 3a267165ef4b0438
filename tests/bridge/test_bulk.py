"""A batch of event rows in one go (cloud_bridge/store/bulk.py), on SQLite and PostgreSQL (COPY there): every
value comes back as given, and a driver error comes out as SQLAlchemy's with nothing of the batch kept."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from cloud_bridge.store import Store
from cloud_bridge.store.bulk import EVENT_COLUMNS, copy_statement, insert_events
from cloud_bridge.store.models import Device, EventRow
from tests.stores import postgres_store


def row(seq: int, **changes: Any) -> dict[str, Any]:
    values = {"event_id": f"{seq:032x}", "device_id": "unit-bulk", "seq": seq, "time_ms": 1_700_000_000_000 + seq,
              "kind": "phone", "phase": "start", "severity": "high", "confidence": 0.5 + seq / 1000,
              "alert_id": f"{seq:032x}", "evidence": None, "flag": None, "prev_hash": "ab" * 16,
              "payload": bytes([seq % 256]) + b'{"k":"v"}', "received_at": 1_700_000_000.25 + seq}
    values.update(changes)
    return values


def stored(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as connection:
        rows = connection.execute(select(*(EventRow.__table__.c[name] for name in EVENT_COLUMNS))
                                  .where(EventRow.device_id == "unit-bulk").order_by(EventRow.seq))
        return [{**r._asdict(), "payload": bytes(r.payload)} for r in rows]


@pytest.fixture
def unit(store: Store) -> Store:
    with store.engine.begin() as connection:
        connection.execute(insert(Device).values(device_id="unit-bulk", public_key="pem", last_seq=0))
    return store


AWKWARD = [  # what a text COPY must escape, and what it must not take for a null
    row(1, payload=b"\x00\\\t\n\r\\N\xff" * 40, evidence="\\N", flag="gap"),
    row(2, kind="tab\there", phase="a\\b", prev_hash="new\nline", confidence=1e-300, severity="é€"),
    row(3, evidence="", flag=None, payload=b""),
]


def test_every_value_comes_back_as_given(unit: Store) -> None:
    with unit.engine.begin() as connection:
        insert_events(connection, AWKWARD)
        insert_events(connection, [])  # nothing: no statement
    assert stored(unit) == AWKWARD


def test_a_batch_with_a_stored_id_raises_integrity_error_and_keeps_nothing(unit: Store) -> None:
    with unit.engine.begin() as connection:
        insert_events(connection, [row(1)])
    with pytest.raises(IntegrityError), unit.engine.begin() as connection:
        insert_events(connection, [row(2), row(5, event_id=row(1)["event_id"]), row(3)])
    assert [r["seq"] for r in stored(unit)] == [1]
    with unit.engine.begin() as connection:  # the connection went back to the pool fit for use
        insert_events(connection, [row(2), row(3)])
        assert connection.scalar(select(func.count()).select_from(EventRow)) == 3


def test_a_missing_device_is_refused_by_the_foreign_key(unit: Store) -> None:
    with pytest.raises(IntegrityError), unit.engine.begin() as connection:
        insert_events(connection, [row(1, device_id="unit-none")])
    with unit.engine.begin() as connection:
        connection.execute(delete(EventRow))


def test_postgresql_takes_the_rows_by_copy(store: Store) -> None:
    with store.engine.connect() as connection:
        if connection.dialect.name != "postgresql":
            assert connection.dialect.driver != "psycopg"  # SQLite: the executemany
            return
        assert connection.dialect.driver == "psycopg"
        statement = copy_statement(connection)
    head, _, columns = statement.removesuffix(") FROM STDIN").partition(" (")
    assert head == "COPY events"
    assert tuple(columns.split(", ")) == EVENT_COLUMNS and "id" not in EVENT_COLUMNS  # the key is the server's


def test_a_server_gone_mid_copy_is_a_dbapi_error_and_the_pool_recovers() -> None:
    with postgres_store("bulk") as store:
        with store.engine.begin() as connection:
            connection.execute(insert(Device).values(device_id="unit-bulk", public_key="pem", last_seq=0))
        with pytest.raises(DBAPIError) as raised, store.engine.begin() as connection:
            pid = connection.scalar(text("SELECT pg_backend_pid()"))
            with store.engine.connect() as other:  # the server ends this connection's session
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            insert_events(connection, [row(1)])
        assert not isinstance(raised.value, IntegrityError) and raised.value.connection_invalidated
        with store.engine.begin() as connection:
            insert_events(connection, [row(2)])
        assert [r["seq"] for r in stored(store)] == [2]
