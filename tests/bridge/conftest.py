"""Stores for the bridge tests: a temporary SQLite file and a throwaway schema in the local PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from cloud_bridge.sessions import Sessions
from cloud_bridge.store import Store
from tests.bridge.parts import Clock, register
from tests.need import need

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened = Store(f"sqlite:///{tmp_path / 'bridge.db'}")
        yield opened
        opened.close()
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # no server here: only where the machine has none
        admin.dispose()
        need(False, f"PostgreSQL at 127.0.0.1:5432 (database test) is not reachable: {exc}")
    opened = Store(f"{POSTGRES}?options=-csearch_path%3D{schema}")
    yield opened
    opened.close()
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sessions(store: Store, clock: Clock) -> Sessions:
    """Sessions over ``store`` with two registered units (unit-1, unit-2) and a settable clock."""
    register(store, "unit-1")
    register(store, "unit-2")
    return Sessions(store, pairing_ttl=900.0, clock=clock)
