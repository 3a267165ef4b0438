"""Fixtures of the scale tests: a 3-node NATS cluster on loopback and a bridge store on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_bridge.store import Store
from tests.need import need
from tests.stores import postgres_store
from tools.scale.nats_cluster import INSTALL, NatsCluster, nats_binary


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    need(nats_binary() is not None, f"nats-server is not installed: {INSTALL}")
    started = NatsCluster(tmp_path / "nats").start()
    yield started
    started.stop()


@pytest.fixture
def pg_store() -> Iterator[Store]:
    """A bridge store in a throwaway PostgreSQL schema (the scale-out deployment's database)."""
    with postgres_store("s") as opened:
        yield opened
