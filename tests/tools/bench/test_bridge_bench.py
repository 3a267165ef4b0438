"""The bridge bench at a tiny size (2 devices x 20 events, two rounds, the devices in a process of their own)
against a real Mosquitto: every event is counted by the null consumer and stored by the bridge in every
round, the JSON holds the figures, and paired events reach the proctor topic. No timing assertions: the
figures themselves are the bench's output."""

from __future__ import annotations

import json
from pathlib import Path

from tests.mosquitto import Mosquitto
from tools.bench import write_report
from tools.bench.bridge import Fleet, bench, latency_run, table

DEVICES, EVENTS, WORKERS = 2, 20, 2
TOTAL = DEVICES * EVENTS
RUN_FIELDS = {"events", "counted", "lost", "seconds", "events_per_s", "publish_seconds", "outcomes",
              "cpu_ms_per_event", "rounds_per_s", "rounds_lost"}
ROUNDS = 2


def check_bridge_run(run: dict[str, object]) -> None:
    assert run.keys() >= RUN_FIELDS | {"rows", "flags", "ratio", "batches", "mean_batch"}
    assert run["counted"] == run["rows"] == TOTAL and run["lost"] == 0 and run["rounds_lost"] == [0] * ROUNDS
    assert isinstance(run["batches"], int) and 1 <= run["batches"] <= TOTAL  # transactions, each acknowledged
    assert run["outcomes"] == {"stored": TOTAL}  # nothing dead-lettered
    ratio = run["ratio"]
    assert isinstance(ratio, float) and ratio > 0


def test_every_event_is_counted_and_stored_and_the_report_is_written(broker: Mosquitto, tmp_path: Path) -> None:
    report = bench(broker.port, DEVICES, EVENTS, WORKERS, latency_events=DEVICES * 4, latency_rate=50.0,
                   repeat=ROUNDS, batching={"batch_max": 8})
    out = tmp_path / "bench" / "bridge.json"
    write_report(report, out)
    data = json.loads(out.read_text())
    assert not [p.name for p in out.parent.iterdir() if p != out]  # no temp file left behind
    assert {"devices", "events_per_device", "workers", "cpus", "null_consumer", "bridge", "latency"} <= data.keys()
    assert (data["devices"], data["events_per_device"], data["workers"]) == (DEVICES, EVENTS, WORKERS)
    null = data["null_consumer"]
    assert null.keys() >= RUN_FIELDS
    assert null["counted"] == TOTAL and null["lost"] == 0 and null["events_per_s"] > 0
    assert len(null["rounds_per_s"]) == ROUNDS and null["events_per_s"] in null["rounds_per_s"]
    assert data["batch_max"] == 8 and data["repeat"] == ROUNDS
    check_bridge_run(data["bridge"]["sqlite"])
    postgres = data["bridge"]["postgresql"]
    if "skipped" in postgres:  # no server on this machine: the JSON says so instead of a figure
        assert "not reachable" in postgres["skipped"]
    else:
        check_bridge_run(postgres)
    assert {"rate_per_s", "events", "received", "p50_ms", "p99_ms", "max_ms", "outcomes"} <= data["latency"].keys()
    assert "bridge sqlite" in table(data) and "null consumer" in table(data)


def test_paired_events_reach_the_proctor_topic(broker: Mosquitto) -> None:
    fleet = Fleet(broker.port, DEVICES)
    try:
        latency = latency_run(broker.port, fleet, WORKERS, count=EVENTS, per_second=50.0)
    finally:
        fleet.close()
    assert latency["outcomes"] == {"stored": EVENTS}
    assert latency["events"] == latency["received"] == EVENTS
    assert 0 <= latency["p50_ms"] <= latency["p99_ms"] <= latency["max_ms"]
