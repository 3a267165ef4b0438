"""The store's migrations on SQLite and PostgreSQL: the schema matches the models, 0002 keeps 0001's data, 0011
gives existing staff accounts a clear failed-login count, and both directions run."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, inspect, select, text

from cloud_bridge.ingest import Ingestor
from cloud_bridge.store import Store, migrate
from cloud_bridge.store.db import _alembic
from cloud_bridge.store.models import Base, Device, EventRow, StaffUser
from edge_app.protocol.keys import public_pem
from tests.bridge.parts import DEVICE_KEY, count, event_payloads, register

NEW_TABLES = {"sessions", "proctor_alerts", "evidence", "api_tokens"}
NEW_DEVICE_COLUMNS = {"mqtt_password_hash", "status_at", "stats", "stats_at"}


def test_the_migrated_schema_matches_the_models(store: Store) -> None:
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_0002_keeps_the_data_of_0001_and_can_be_undone(store: Store) -> None:
    command.downgrade(_alembic(store.url), "0001")
    tables = set(inspect(store.engine).get_table_names())
    assert not tables & NEW_TABLES and {"devices", "events", "dead_letters"} <= tables
    assert not NEW_DEVICE_COLUMNS & {c["name"] for c in inspect(store.engine).get_columns("devices")}
    public = public_pem(DEVICE_KEY)
    with store.engine.begin() as connection:  # a 0001 database with a device that has sent one event
        connection.execute(text("INSERT INTO devices (device_id, public_key, last_seq, last_hash, status) "
                                "VALUES ('unit-1', :key, 1, 'h', 'online')"), {"key": public})
        connection.execute(text(
            "INSERT INTO events (event_id, device_id, seq, time_ms, kind, phase, severity, confidence, alert_id, "
            "payload, received_at) VALUES ('e1', 'unit-1', 1, 5, 'phone', 'start', 'critical', 0.9, 'e1', :p, 1)"),
            {"p": b"{}"})
    migrate(store.url)
    assert set(inspect(store.engine).get_table_names()) >= NEW_TABLES
    with store.session() as session:
        device = session.get(Device, "unit-1")
        assert device is not None
        assert (device.public_key, device.last_seq, device.status) == (public, 1, "online")
        assert (device.mqtt_password_hash, device.stats, device.status_at) == (None, None, None)
    assert count(store, EventRow) == 1
    assert [d.device_id for d in Ingestor(store).devices()] == ["unit-1"]


def test_migrating_again_changes_nothing(store: Store) -> None:
    register(store, "unit-1")
    migrate(store.url)
    again = Store(store.url)
    try:
        assert [d.device_id for d in Ingestor(again).devices()] == ["unit-1"]
    finally:
        again.close()


def test_a_new_store_takes_events_after_a_downgrade_and_upgrade(store: Store) -> None:
    command.downgrade(_alembic(store.url), "base")
    assert not {"devices", "events"} & set(inspect(store.engine).get_table_names())
    migrate(store.url)
    register(store, "unit-1")
    assert Ingestor(store).handle("invigil/v1/dev/unit-1/event", event_payloads(1)[0]).status == "stored"


def test_a_sqlite_store_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask: files 0644 unless created otherwise
    try:
        path = tmp_path / "bridge.db"
        store = Store(f"sqlite:///{path}")
        register(store, "unit-1")  # a write: the -wal and -shm files exist now
        assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()} == {
            "bridge.db": 0o600, "bridge.db-wal": 0o600, "bridge.db-shm": 0o600}
        store.close()
        path.chmod(0o644)  # made by an older bridge
        again = Store(f"sqlite:///{path}")
        register(again, "unit-2")
        assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()} == {
            "bridge.db": 0o600, "bridge.db-wal": 0o600, "bridge.db-shm": 0o600}
        again.close()
    finally:
        os.umask(old)


def test_0011_gives_existing_staff_a_clear_count_and_can_be_undone(store: Store) -> None:
    command.downgrade(_alembic(store.url), "0010")
    columns = {c["name"] for c in inspect(store.engine).get_columns("staff_users")}
    assert "role" in columns and not {"failed_logins", "locked_until"} & columns
    with store.engine.begin() as connection:  # a 0010 database with a staff account
        connection.execute(text("INSERT INTO staff_users (username, password_hash, created_at, disabled, role) "
                                "VALUES ('ana', 'scrypt$x', 1, :no, 'staff')"), {"no": False})
    migrate(store.url)
    with store.session() as session:
        user = session.scalar(select(StaffUser).where(StaffUser.username == "ana"))
        assert user is not None and (user.role, user.failed_logins, user.locked_until) == ("staff", 0, None)
    command.downgrade(_alembic(store.url), "0010")
    assert not {"failed_logins", "locked_until"} & {c["name"] for c in inspect(store.engine).get_columns(
        "staff_users")}
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT username FROM staff_users")).scalars().all() == ["ana"]
    migrate(store.url)


def _rows_changed_since_analysis(store: Store, table: str) -> int:
    with store.engine.connect() as connection:  # a new transaction: a fresh look at the statistics views
        return int(connection.scalar(text("SELECT n_mod_since_analyze FROM pg_stat_user_tables "
                                          "WHERE schemaname = current_schema() AND relname = :t"), {"t": table}) or 0)


def test_a_table_that_doubled_gets_fresh_planner_statistics_once(store: Store) -> None:
    register(store, "unit-1")
    assert store.refresh_statistics() == []  # nothing has grown by 1,000 rows yet (SQLite: never anything)
    with store.engine.begin() as connection:  # 1,200 rows: a table grown from nothing
        connection.execute(insert(EventRow), [
            {"event_id": f"e{n:05d}", "device_id": "unit-1", "seq": n, "time_ms": n, "kind": "phone",
             "phase": "start", "severity": "alert", "confidence": 0.9, "alert_id": f"e{n:05d}", "evidence": None,
             "flag": None, "prev_hash": "", "payload": b"{}", "received_at": 0.0} for n in range(1, 1201)])
        if store.engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_stat_force_next_flush()"))  # the counts reach the views now
    if store.engine.dialect.name != "postgresql":
        assert store.refresh_statistics() == []
        return
    deadline = time.monotonic() + 15.0
    while _rows_changed_since_analysis(store, "events") < 1200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _rows_changed_since_analysis(store, "events") >= 1200
    assert store.refresh_statistics() == ["events"]
    with store.engine.connect() as connection:
        analysed, tuples = connection.execute(text(
            "SELECT s.last_analyze IS NOT NULL, c.reltuples FROM pg_stat_user_tables s JOIN pg_class c "
            "ON c.oid = s.relid WHERE s.schemaname = current_schema() AND s.relname = 'events'")).one()
    assert analysed and tuples == 1200
    assert store.refresh_statistics() == []  # analysed: nothing changed since
