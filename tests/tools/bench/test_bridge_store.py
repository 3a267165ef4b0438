"""The bench's stores start in service: earlier exams' events stored (and analysed on PostgreSQL), left out of
the run's own counts."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select, text

from cloud_bridge.store import Store
from cloud_bridge.store.models import EventRow
from tests.stores import postgres_store
from tools.bench.bridge_store import PAST_DEVICES, PAST_EVENTS, chain_flags, in_service, stored_rows


def check_in_service(store: Store) -> None:
    assert in_service(store) == PAST_DEVICES * PAST_EVENTS
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(EventRow)) == PAST_DEVICES * PAST_EVENTS
    assert stored_rows(store) == 0 and chain_flags(store) == {}


def test_a_sqlite_store_in_service(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/b.db")
    try:
        check_in_service(store)
    finally:
        store.close()


def test_a_postgresql_store_in_service_has_its_statistics() -> None:
    with postgres_store("bench") as store:
        check_in_service(store)
        with store.engine.connect() as connection:
            tuples = connection.scalar(text("SELECT c.reltuples FROM pg_class c JOIN pg_namespace n "
                                            "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() "
                                            "AND c.relname = 'events'"))
        assert tuples == PAST_DEVICES * PAST_EVENTS  # analysed: the planner knows the table's size
