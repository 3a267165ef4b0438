"""Bridge figures (`make bench`): events/s through the bridge against a null consumer, and proctor latency.

One Mosquitto on a loopback port; N simulated devices (a paho client and an Ed25519 key each) publish
pre-signed events at QoS 1 as fast as the PUBACKs allow, in runs on that one broker:
- null consumer: W plain clients on the bridge's shared subscription that only count (first publish to last
  receive): the ceiling set by the broker and the devices;
- bridge: W cloud_bridge.mqtt.Consumer workers (batches, acknowledged after their commit) with the real
  Dispatcher on SQLite, and on PostgreSQL in a throwaway schema when reachable (first publish to last event
  stored); the figure is bridge / null;
- latency: each device paired with a session, a Publisher republishing to the proctor topic, events at a
  steady rate: device publish to receive on invigil/v1/proctor/+/alerts, p50/p99 ms.
With ``--processes P`` (P > 1) each round also runs the bridge with its consumers in P worker processes
(tools/bench/bridge_processes.py), on SQLite and PostgreSQL, reported beside the one-process runs.
The throughput runs are repeated (``--repeat``, in turn: null, SQLite, PostgreSQL, so a busy moment of the
machine hits all of them alike) and each is reported by its median round; the ratio is median to median.
Prints a table and writes build/bench/bridge.json atomically.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_bridge.config import MqttConfig
from cloud_bridge.mqtt import Consumer, Publisher
from cloud_bridge.services import Services
from cloud_bridge.store import Store
from edge_app.protocol.keys import public_pem
from tools.bench import write_report
from tools.bench.bridge_fleet import FleetProcess
from tools.bench.bridge_parts import (
    ALERTS,
    CONNECT_SECONDS,
    EVENTS,
    STALL_SECONDS,
    Batches,
    Fleet,
    Tally,
    close,
    connect,
    stop,
    wait,
)
from tools.bench.bridge_processes import processes_run
from tools.bench.bridge_store import chain_flags, in_service, stored_rows
from tools.mosquitto import BrokerProcess, anonymous_conf, free_port
from tools.postgres import NoPostgres, postgres_schema

ROOT = Path(__file__).resolve().parents[2]


def null_run(port: int, fleet: Fleet | FleetProcess, batches: Batches, workers: int) -> dict[str, Any]:
    """W plain clients on the bridge's shared event subscription that only count."""
    tally, total = Tally("received"), sum(len(b) for b in batches)
    clients = [connect(port, f"bench-null-{i}", [EVENTS], lambda *_a: tally.add("received")) for i in range(workers)]
    try:
        cpu = time.process_time()
        start, acked = fleet.blast(batches)
        tally.wait(total)
        cpu = time.process_time() - cpu
    finally:
        for client in clients:
            close(client)
    return {**tally.figures(total, start, acked), "cpu_ms_per_event": round(cpu * 1000 / total, 3)}


def start_bridge(port: int, services: Services, workers: int, name: str, tally: Tally,
                 batching: dict[str, Any] | None = None) -> list[Consumer]:
    """W Consumer workers handing every message to the Dispatcher, subscribed when this returns."""
    def handle(topic: str, payload: bytes) -> str:
        outcome = services.dispatcher.handle(topic, payload)
        tally.add(outcome)
        return outcome

    def handle_batch(messages: list[tuple[str, bytes]]) -> list[str | Exception]:
        outcomes = services.dispatcher.handle_batch(messages)
        for outcome in outcomes:
            if not isinstance(outcome, Exception):  # retried on its own, through handle
                tally.add(outcome)
        return outcomes

    # session_expiry 0: a run's shared-subscription sessions end with it and take no later run's messages
    config = MqttConfig(host="127.0.0.1", port=port, workers=workers, client_prefix=f"bench-{name}",
                        session_expiry=0, **(batching or {}))
    consumers = [Consumer(config, index, handle, handle_batch) for index in range(workers)]
    for consumer in consumers:
        consumer.start()
    if not all(consumer.subscribed.wait(CONNECT_SECONDS) for consumer in consumers):
        stop(consumers)
        raise RuntimeError(f"bridge consumers not subscribed within {CONNECT_SECONDS:g} s")
    return consumers


def bridge_run(port: int, fleet: Fleet | FleetProcess, batches: Batches, workers: int, url: str, name: str,
               batching: dict[str, Any] | None = None) -> dict[str, Any]:
    """W Consumer workers with the real Dispatcher on the store at ``url``: events/s stored, rows, chain flags,
    and the batches the consumers stored them in."""
    store, tally, total = Store(url), Tally("stored"), sum(len(b) for b in batches)
    try:
        services = Services.build(store)
        for device in fleet.devices:
            services.ingestor.register(device.device_id, public_pem(device.key))
        in_service(store)
        consumers = start_bridge(port, services, workers, name, tally, batching)
        try:
            cpu = time.process_time()  # every thread of this process: the bridge's own cost, not the database's
            start, acked = fleet.blast(batches)
            tally.wait(total)
            cpu = time.process_time() - cpu
        finally:
            stop(consumers)
        transactions = sum(consumer.batches for consumer in consumers)
        rows, flags = stored_rows(store), chain_flags(store)
    finally:
        store.close()
    return {**tally.figures(total, start, acked), "cpu_ms_per_event": round(cpu * 1000 / total, 3), "rows": rows,
            "flags": flags, "batches": transactions,
            "mean_batch": round(total / transactions, 1) if transactions else None}


def postgres_run(port: int, fleet: Fleet | FleetProcess, batches: Batches, workers: int, name: str = "pg",
                 batching: dict[str, Any] | None = None, processes: int = 1) -> dict[str, Any]:
    """The bridge run on PostgreSQL in a throwaway schema (its consumers in ``processes`` processes when more
    than one); ``{"skipped": why}`` when no server answers."""
    try:
        with postgres_schema("bench") as url:
            if processes > 1:
                return processes_run(port, fleet, batches, workers, url, name, processes, batching)
            return bridge_run(port, fleet, batches, workers, url, name, batching)
    except NoPostgres as exc:
        return {"skipped": str(exc)}


def latency_run(port: int, fleet: Fleet, workers: int, count: int, per_second: float,
                batching: dict[str, Any] | None = None) -> dict[str, Any]:
    """Paired devices, events at a steady rate: device publish to receive on the proctor topic (SQLite)."""
    photo = cv2.imencode(".jpg", np.full((16, 16, 3), 128, np.uint8))[1].tobytes()
    received: dict[str, float] = {}
    sent: dict[str, float] = {}

    def on_alert(_client: Any, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        received[json.loads(message.payload)["event"]] = time.perf_counter()

    with tempfile.TemporaryDirectory() as folder:
        store, tally = Store(f"sqlite:///{folder}/latency.db"), Tally("stored")
        publisher = Publisher(MqttConfig(host="127.0.0.1", port=port, client_prefix="bench-lat",
                                         session_expiry=0))  # type: ignore[call-arg]
        publisher.start()
        proctor, consumers = connect(port, "bench-proctor", [ALERTS], on_alert), list[Consumer]()
        try:
            if not publisher.connected.wait(CONNECT_SECONDS):
                raise RuntimeError("the bridge's publisher did not connect")
            services = Services.build(store, publisher.publish, Ed25519PrivateKey.generate())
            for index, device in enumerate(fleet.devices):
                services.ingestor.register(device.device_id, public_pem(device.key))
                view = services.sessions.create(f"bench-exam-{index}", f"candidate-{index}", photo)
                services.sessions.pair(device.device_id, view.pairing_code or "")
            consumers = start_bridge(port, services, workers, "lat", tally, batching)
            per_device = [device.signed(math.ceil(count / len(fleet.devices))) for device in fleet.devices]
            order = [(device, item) for round_ in zip(*per_device, strict=True)
                     for device, item in zip(fleet.devices, round_, strict=True)][:count]
            start = time.perf_counter()
            for index, (device, (event_id, payload)) in enumerate(order):
                time.sleep(max(0.0, start + index / per_second - time.perf_counter()))
                sent[event_id] = time.perf_counter()
                device.publish(payload)
            tally.wait(len(order))
            wait(lambda: len(received) >= tally.done, STALL_SECONDS)
        finally:
            stop(consumers)
            close(proctor)
            publisher.stop()
            store.close()
    millis = [(received[e] - t) * 1000 for e, t in sent.items() if e in received]
    ms = {f"p{q}_ms": round(float(np.percentile(millis, q)), 2) if millis else None for q in (50, 99)}
    return {"rate_per_s": per_second, "events": len(sent), "received": len(millis), **ms,
            "max_ms": round(max(millis), 2) if millis else None, "outcomes": dict(tally.outcomes)}


def median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median events/s (the lower middle one of an even count), with every round's events/s
    and losses beside it; a skipped run as it came."""
    if any("skipped" in run for run in rounds):
        return next(run for run in rounds if "skipped" in run)
    middle = sorted(rounds, key=lambda run: run["events_per_s"])[(len(rounds) - 1) // 2]
    return {**middle, "rounds_per_s": [run["events_per_s"] for run in rounds],
            "rounds_lost": [run["lost"] for run in rounds]}


def bench(port: int, devices: int, events: int, workers: int, latency_events: int, latency_rate: float,
          repeat: int = 1, batching: dict[str, Any] | None = None, processes: int = 1) -> dict[str, Any]:
    """Every run on the broker at 127.0.0.1:``port``, the throughput runs ``repeat`` times; the report."""
    fleet = Fleet(port, devices)
    far = FleetProcess(port, fleet.devices)  # the same devices, publishing from a process of their own
    split = [f"sqlite/{processes}p", f"postgresql/{processes}p"] if processes > 1 else []
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in ["null", "sqlite", "postgresql", *split]}
    try:
        batches = [[payload for _id, payload in device.signed(events)] for device in fleet.devices]
        for round_ in range(repeat):
            rounds["null"].append(null_run(port, far, batches, workers))
            with tempfile.TemporaryDirectory() as folder:
                rounds["sqlite"].append(bridge_run(port, far, batches, workers, f"sqlite:///{folder}/bridge.db",
                                                   f"sqlite-{round_}", batching))
            rounds["postgresql"].append(postgres_run(port, far, batches, workers, f"pg-{round_}", batching))
            if processes > 1:
                with tempfile.TemporaryDirectory() as folder:
                    rounds[split[0]].append(processes_run(port, far, batches, workers, f"sqlite:///{folder}/b.db",
                                                          f"sqlite-{round_}", processes, batching))
                rounds[split[1]].append(postgres_run(port, far, batches, workers, f"pg-{round_}", batching, processes))
        null = median_round(rounds["null"])
        stores = {db: median_round(rounds[db]) for db in ("sqlite", "postgresql", *split)}
        for run in stores.values():
            if "events_per_s" in run:
                run["ratio"] = round(run["events_per_s"] / null["events_per_s"], 4) if null["events_per_s"] else None
        latency = latency_run(port, fleet, workers, latency_events, latency_rate, batching)
    finally:
        far.close()
        fleet.close()
    config = MqttConfig(host="127.0.0.1", **(batching or {}))
    return {"devices": devices, "events_per_device": events, "workers": workers, "cpus": os.cpu_count(),
            "repeat": repeat, "processes": processes, "batch_max": config.batch_max,
            "batch_wait_ms": config.batch_wait_ms,
            "null_consumer": null, "bridge": stores, "latency": latency}


def table(report: dict[str, Any]) -> str:
    lines = [f"bridge bench: {report['devices']} devices x {report['events_per_device']} events, "
             f"{report['workers']} workers, {report['cpus']} cpus, median of {report.get('repeat', 1)} rounds; "
             f"batches of at most {report.get('batch_max')} or {report.get('batch_wait_ms')} ms",
             f"  {'run':<23}{'counted':>11}{'lost':>6}{'seconds':>9}{'events/s':>10}{'ratio':>8}  "
             "rounds (events/s)  CPU ms/event  mean batch  chain flags"]
    for name, run in [("null consumer", report["null_consumer"]),
                      *((f"bridge {db}", run) for db, run in report["bridge"].items())]:
        if "skipped" in run:
            lines.append(f"  {name:<23}skipped: {run['skipped'][:90]}")
            continue
        rounds = "/".join(f"{rate:.0f}" for rate in run.get("rounds_per_s", [run["events_per_s"]]))
        lines.append(f"  {name:<23}{run['counted']:>5}/{run['events']:<5}{run['lost']:>6}{run['seconds']:>9.2f}"
                     f"{run['events_per_s']:>10.1f}{run.get('ratio') or 1.0:>8.4f}  {rounds:<18} "
                     f"{run.get('cpu_ms_per_event', ''):>12}  {run.get('mean_batch') or '':>10}  "
                     f"{run.get('flags', '')}")
    lat = report["latency"]
    lines.append(f"  proctor latency at {lat['rate_per_s']:g}/s: {lat['received']}/{lat['events']} received, "
                 f"p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms {lat['outcomes']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=10, help="simulated devices")
    # sized for < 60 s on 2 cores
    parser.add_argument("--events", type=int, default=1000, help="events per device in the throughput runs (rounds "
                        "of a second or more: shorter ones swung by half with the machine's other work)")
    parser.add_argument("--workers", type=int, default=2, help="consumers on the shared subscription")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the throughput runs (median reported)")
    parser.add_argument("--batch-max", type=int, help="the consumers' mqtt.batch_max (default: the config's)")
    parser.add_argument("--batch-wait-ms", type=float, help="the consumers' mqtt.batch_wait_ms (default: the "
                        "config's)")
    parser.add_argument("--processes", type=int, default=1, help="also run the bridge with its consumers in this "
                        "many worker processes (the workers split among them), when more than 1")
    parser.add_argument("--latency-events", type=int, default=250, help="events in the latency run")
    parser.add_argument("--latency-rate", type=float, default=50.0, help="events/s (all devices) in the latency run")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench" / "bridge.json")
    args = parser.parse_args(argv)
    sizes = (args.devices, args.events, args.workers, args.latency_events, args.repeat, args.processes)
    if min(sizes) < 1 or args.latency_rate <= 0:
        parser.error("sizes and the rate must be positive")
    batching = {name: value for name, value in (("batch_max", args.batch_max), ("batch_wait_ms", args.batch_wait_ms))
                if value is not None}
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        conf = Path(folder) / "mosquitto.conf"
        conf.write_text(anonymous_conf(port, Path(folder)))
        try:
            broker = BrokerProcess(conf, port, Path(folder) / "mosquitto.log")
        except RuntimeError as exc:  # not installed: the message has the install command
            print(f"error: {exc}", file=sys.stderr)
            return 2
        broker.start()
        try:
            report = bench(broker.port, args.devices, args.events, args.workers, args.latency_events,
                           args.latency_rate, args.repeat, batching, args.processes)
        finally:
            broker.stop()
    print(table(report))
    write_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
