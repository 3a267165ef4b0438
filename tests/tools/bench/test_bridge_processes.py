"""The bridge bench's run with its consumers in two worker processes, at a tiny size against a real Mosquitto
and SQLite (PostgreSQL when reachable): every event is stored once, both processes stored some, the figures
are summed from the workers. No timing assertions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mosquitto import Mosquitto
from tests.need import need
from tools.bench.bridge_fleet import FleetProcess
from tools.bench.bridge_parts import Fleet
from tools.bench.bridge_processes import processes_run, split
from tools.postgres import NoPostgres, postgres_schema

DEVICES, EVENTS, WORKERS, PROCESSES = 3, 40, 2, 2
TOTAL = DEVICES * EVENTS


def test_split_gives_every_process_a_share() -> None:
    assert split(2, 2) == [1, 1]
    assert split(5, 2) == [3, 2]
    assert sum(split(7, 3)) == 7 and min(split(7, 3)) >= 2


def check(run: dict[str, object]) -> None:
    assert run["counted"] == run["rows"] == TOTAL and run["lost"] == 0
    assert run["outcomes"] == {"stored": TOTAL} and run["flags"] == {}  # one chain, stored by two processes
    per_process = run["per_process"]
    assert isinstance(per_process, list) and len(per_process) == PROCESSES and sum(per_process) == TOTAL
    assert all(n > 0 for n in per_process)  # the shared subscription gave each process some
    assert isinstance(run["cpu_ms_per_event"], float) and run["cpu_ms_per_event"] > 0
    assert isinstance(run["events_per_s"], float) and run["events_per_s"] > 0


@pytest.fixture
def fleet(broker: Mosquitto) -> Iterator[FleetProcess]:
    near = Fleet(broker.port, DEVICES)
    far = FleetProcess(broker.port, near.devices)
    yield far
    far.close()
    near.close()


def batches(fleet: FleetProcess) -> list[list[bytes]]:
    return [[payload for _id, payload in device.signed(EVENTS)] for device in fleet.devices]


def test_two_processes_store_every_event_once_on_sqlite(broker: Mosquitto, fleet: FleetProcess,
                                                         tmp_path: Path) -> None:
    check(processes_run(broker.port, fleet, batches(fleet), WORKERS, f"sqlite:///{tmp_path}/bridge.db", "t",
                        PROCESSES, {"batch_max": 8}))


def test_two_processes_store_every_event_once_on_postgresql(broker: Mosquitto, fleet: FleetProcess) -> None:
    try:
        with postgres_schema("benchp") as url:
            check(processes_run(broker.port, fleet, batches(fleet), WORKERS, url, "pg", PROCESSES,
                                {"batch_max": 8}))
    except NoPostgres as exc:
        need(False, str(exc))  # fails in CI: PostgreSQL is on every machine of the project
