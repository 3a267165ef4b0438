"""Scale figures (`make scale`): many simulated units against real bridge workers on PostgreSQL.

For each worker count: a fresh PostgreSQL schema, every unit registered and paired with a session of its
own, then either
- ``--engine mosquitto``: one Mosquitto, the bridge as deployed (``python -m cloud_bridge serve``, its
  ``mqtt.workers`` consumers on ``$share/bridge``), the proctor client on the alerts topic; or
- ``--engine nats``: a 3-node NATS cluster (JetStream, MQTT gateway on each node; units spread over the
  nodes) and the bridge's JetStream consumer (cloud_bridge/jetstream.py) in a process of its own,
  ``tools.scale.jsbridge`` (ingest only: the bridge's MQTT 5 publisher cannot reach NATS's gateway).
The simulator (tools/scale/sim.py) runs in this process. Prints a table; writes build/scale/<engine>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from sqlalchemy import select

from cloud_bridge.services import Services
from cloud_bridge.store import Store
from cloud_bridge.store.models import EventRow
from edge_app.protocol.keys import load_or_create_key
from tools.bench import write_report
from tools.mosquitto import BrokerProcess, anonymous_conf, free_port
from tools.postgres import postgres_schema
from tools.processes import stop_process
from tools.scale.nats_cluster import NatsCluster
from tools.scale.sim import Run, drive, figures, finish
from tools.scale.units import Unit

ROOT = Path(__file__).resolve().parents[2]
Outcome = tuple[Run, dict[str, float]]  # the run and the stored rows (event id -> received_at)
SETTLE_SECONDS = 60.0  # after publishing, wait this long at most for the bridge to store the rest
START_SECONDS = 30.0


def seed(url: str, units: list[Unit], key_file: Path) -> None:
    """Register every unit and pair it with a session of its own (so each event becomes a proctor alert)."""
    photo = cv2.imencode(".jpg", np.full((16, 16, 3), 128, np.uint8))[1].tobytes()
    store = Store(url)
    try:
        services = Services.build(store, None, load_or_create_key(key_file))
        for index, unit in enumerate(units):
            services.ingestor.register(unit.device_id, unit.public_pem)
            view = services.sessions.create(f"scale-exam-{index // 50}", f"candidate-{index}", photo)
            services.sessions.pair(unit.device_id, view.pairing_code or "")
    finally:
        store.close()


def stored(url: str) -> dict[str, float]:
    store = Store(url)
    try:
        with store.session() as session:
            return {e: float(t) for e, t in session.execute(select(EventRow.event_id, EventRow.received_at))}
    finally:
        store.close()


def wait_stored(url: str, run: Run) -> dict[str, float]:
    """Until every acknowledged event is stored (and its alert arrived), or nothing new for SETTLE_SECONDS."""
    acked = {e for unit in run.units for e in unit.acked}
    seen, since = -1, time.monotonic()
    while time.monotonic() - since < SETTLE_SECONDS:
        rows = stored(url)
        if acked <= rows.keys() and (run.proctor is None or len(run.alerts) >= len(acked)):
            return rows
        if len(rows) + len(run.alerts) != seen:
            seen, since = len(rows) + len(run.alerts), time.monotonic()
        time.sleep(0.5)
    return stored(url)


def spawn(argv: list[str], ready: str, log: Path) -> subprocess.Popen[str]:
    """A child process, waited for until it prints ``ready`` on stdout (its stderr goes to ``log``)."""
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log.open("w"), text=True, cwd=ROOT)
    assert child.stdout is not None
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            raise RuntimeError(f"{argv[2]} ended at start: {log.read_text()[-600:]}")
        if ready in line:
            return child
    child.kill()
    raise RuntimeError(f"{argv[2]} not ready within {START_SECONDS:g} s")


def mosquitto_run(folder: Path, url: str, units: list[Unit], workers: int, rate: float, seconds: float) -> Outcome:
    port = free_port()
    (folder / "mosquitto.conf").write_text(anonymous_conf(port, folder))
    broker = BrokerProcess(folder / "mosquitto.conf", port, folder / "mosquitto.log")
    broker.start()
    for unit in units:
        unit.brokers = [("127.0.0.1", port)]
    config = folder / "bridge.toml"
    config.write_text(f'database_url = "{url}"\nkey_file = "bridge.key"\n'
                      f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\nworkers = {workers}\nclient_prefix = "scale"\n'
                      '[http]\nport = 0\n')
    try:
        bridge = spawn([sys.executable, "-m", "cloud_bridge", "serve", "--config", str(config)], "bridge serving",
                       folder / "bridge.log")
        try:
            time.sleep(2.0)  # the consumers subscribe just after the HTTP server is up
            run = asyncio.run(drive(units, ("127.0.0.1", port), rate, seconds))
            rows = wait_stored(url, run)
            asyncio.run(finish(run))
        finally:
            stop_process(bridge)
    finally:
        broker.stop()
    return run, rows


def nats_run(folder: Path, url: str, units: list[Unit], workers: int, rate: float, seconds: float) -> Outcome:
    cluster = NatsCluster(folder / "nats").start()
    try:
        brokers = [("127.0.0.1", node.mqtt) for node in cluster.nodes]
        for index, unit in enumerate(units):
            unit.brokers, unit.home = brokers, index % len(brokers)
        bridge = spawn([sys.executable, "-m", "tools.scale.jsbridge", "--database-url", url, "--workers",
                        str(workers), *cluster.urls()], "consuming", folder / "jsbridge.log")
        try:
            run = asyncio.run(drive(units, None, rate, seconds))
            rows = wait_stored(url, run)
            asyncio.run(finish(run))
        finally:
            stop_process(bridge)
    finally:
        cluster.stop()
    return run, rows


def measure(engine: str, count: int, workers: int, rate: float, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as name, postgres_schema("scale") as url:
        folder = Path(name)
        units = [Unit(f"u{i:05d}", []) for i in range(count)]
        seed(url, units, folder / "bridge.key")
        run, rows = (mosquitto_run if engine == "mosquitto" else nats_run)(folder, url, units, workers, rate, seconds)
        return {"engine": engine, "workers": workers, "rate_per_unit": rate, "seconds": seconds, **figures(run, rows)}


def table(runs: list[dict[str, Any]]) -> str:
    lines = [f"  {'engine':<10}{'workers':>8}{'units':>7}{'offered/s':>10}{'stored/s':>10}{'stored':>8}{'lost':>6}"
             f"{'ingest p50/p99 ms':>20}{'proctor p50/p99 ms':>21}"]
    for r in runs:
        proctor = f"{r['proctor']['p50_ms']}/{r['proctor']['p99_ms']}" if r["proctor"]["received"] else "-"
        lines.append(f"  {r['engine']:<10}{r['workers']:>8}{r['units']:>7}{r['offered_per_s']:>10}"
                     f"{r['events_per_s']:>10}{r['stored']:>8}{r['lost_acked']:>6}"
                     f"{str(r['ingest']['p50_ms']) + '/' + str(r['ingest']['p99_ms']):>20}{proctor:>21}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=("mosquitto", "nats"), default="mosquitto")
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="bridge worker counts to run")
    parser.add_argument("--rate", type=float, nargs="+", default=[0.2, 0.5], help="events/s per unit (one run each)")
    parser.add_argument("--seconds", type=float, default=20.0, help="publishing time of a run")
    parser.add_argument("--out", type=Path, help="default build/scale/<engine>.json")
    args = parser.parse_args(argv)
    if args.units < 1 or args.seconds <= 0 or min(args.workers) < 1 or min(args.rate) <= 0:
        parser.error("sizes, rates and the duration must be positive")
    runs = []
    for rate in args.rate:
        for workers in args.workers:
            runs.append(measure(args.engine, args.units, workers, rate, args.seconds))
            print(table(runs[-1:]), flush=True)
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
              "load_1m": round(os.getloadavg()[0], 2), "runs": runs}
    print(f"scale: {args.units} units, {os.cpu_count()} cpus, load {report['load_1m']} (shared machine)")
    print(table(runs))
    write_report(report, args.out or ROOT / "build" / "scale" / f"{args.engine}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
