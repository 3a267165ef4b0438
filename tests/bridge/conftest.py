"""Stores for the bridge tests: a temporary SQLite file and a throwaway schema in the local PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_bridge.sessions import Sessions
from cloud_bridge.store import Store
from tests.bridge.parts import Clock, register
from tests.stores import postgres_store


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened = Store(f"sqlite:///{tmp_path / 'bridge.db'}")
        yield opened
        opened.close()
        return
    with postgres_store() as opened:
        yield opened


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sessions(store: Store, clock: Clock) -> Sessions:
    """Sessions over ``store`` with two registered units (unit-1, unit-2) and a settable clock."""
    register(store, "unit-1")
    register(store, "unit-2")
    return Sessions(store, pairing_ttl=900.0, clock=clock)
