"""The bridge bench's run with its consumers in P worker processes (``--processes``), as the bridge would scale
past one GIL (docs/scale.md).

Each worker is a child process (``python -m tools.bench.bridge_processes``) with its own Store, Services and
Consumers over the same database (client ids ``bench-<name>-p<k>-<n>``), the W workers split among them. The
bench registers the devices, starts the clock, blasts, and polls the stored events' COUNT until all are there
(or none is new for STALL_SECONDS); each worker reports its own tally (when its last event was stored, on
``time.monotonic()``, the same clock in every process), its batches and the CPU it spent, summed here.
The protocol is one JSON object a line: the parent sends the run (``{"port", "url", "name", "workers",
"batching"}``; answer ``{"ready": true}`` once subscribed), ``{"measure": true}`` (answer once the CPU mark is
taken), ``{"figures": true}`` (answer the tally, batches and CPU seconds), then closes stdin.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from typing import Any

from cloud_bridge.services import Services
from cloud_bridge.store import Store
from edge_app.protocol.keys import public_pem
from tools.bench.bridge_fleet import FleetProcess
from tools.bench.bridge_parts import CONNECT_SECONDS, STALL_SECONDS, Batches, Fleet, Tally, stop
from tools.bench.bridge_store import chain_flags, in_service, stored_rows


class Worker:
    """One worker process of the run, spoken to a line at a time."""

    def __init__(self, run: dict[str, Any]) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "tools.bench.bridge_processes"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.send(run)

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"a bridge worker process ended (exit {self.process.wait(CONNECT_SECONDS)})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # it has ended already
            self.process.stdin.close()
        try:
            self.process.wait(CONNECT_SECONDS * 4)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(CONNECT_SECONDS)


def _ask_all(workers: list[Worker], message: dict[str, Any]) -> list[dict[str, Any]]:
    for worker in workers:
        worker.send(message)
    return [worker.answer() for worker in workers]


def _wait_stored(store: Store, total: int) -> None:
    """Until ``total`` events are stored, or none is new for STALL_SECONDS."""
    seen, since = -1, time.monotonic()
    while (stored := stored_rows(store)) < total and time.monotonic() - since < STALL_SECONDS:
        if stored != seen:
            seen, since = stored, time.monotonic()
        time.sleep(0.05)


def split(workers: int, processes: int) -> list[int]:
    """W consumers among P processes as evenly as they go (every process at least one)."""
    return [workers // processes + (1 if k < workers % processes else 0) for k in range(processes)]


def processes_run(port: int, fleet: Fleet | FleetProcess, batches: Batches, workers: int, url: str, name: str,
                  processes: int, batching: dict[str, Any] | None = None) -> dict[str, Any]:
    """The bridge run (tools/bench/bridge.py's ``bridge_run``) with the consumers in ``processes`` processes (at
    least one consumer each: W is raised to P when smaller); ``per_process`` is how many each stored."""
    store, total = Store(url), sum(len(b) for b in batches)
    children: list[Worker] = []
    try:
        services = Services.build(store)
        for device in fleet.devices:
            services.ingestor.register(device.device_id, public_pem(device.key))
        in_service(store)
        try:
            for k, count in enumerate(split(max(workers, processes), processes)):
                children.append(Worker({"port": port, "url": url, "name": f"{name}-p{k}", "workers": count,
                                        "batching": batching or {}}))
            [child.answer() for child in children]  # ready: subscribed
            _ask_all(children, {"measure": True})
            start, acked = fleet.blast(batches)
            _wait_stored(store, total)
            reports = _ask_all(children, {"figures": True})
        finally:
            for child in children:
                child.close()
        rows, flags = stored_rows(store), chain_flags(store)
    finally:
        store.close()
    counted, last = sum(r["counted"] for r in reports), max(r["last"] for r in reports)
    outcomes: dict[str, int] = {}
    for report in reports:
        for outcome, n in report["outcomes"].items():
            outcomes[outcome] = outcomes.get(outcome, 0) + n
    seconds, transactions = max(last - start, 1e-9), sum(r["batches"] for r in reports)
    return {"events": total, "counted": counted, "lost": total - sum(outcomes.values()),
            "seconds": round(seconds, 3), "events_per_s": round(counted / seconds, 1),
            "publish_seconds": round(acked - start, 3), "outcomes": outcomes, "processes": processes,
            "cpu_ms_per_event": round(sum(r["cpu"] for r in reports) * 1000 / total, 3),
            "per_process": [r["counted"] for r in reports], "rows": rows, "flags": flags, "batches": transactions,
            "mean_batch": round(total / transactions, 1) if transactions else None}


def main() -> int:
    from tools.bench.bridge import start_bridge  # here: tools.bench.bridge imports this module

    run = json.loads(sys.stdin.readline())
    store, tally = Store(run["url"], upgrade=False), Tally("stored")
    try:
        consumers = start_bridge(run["port"], Services.build(store), run["workers"], run["name"], tally,
                                 run["batching"])
        try:
            print(json.dumps({"ready": True}), flush=True)
            cpu = 0.0
            for line in sys.stdin:
                message = json.loads(line)
                if "measure" in message:
                    cpu = time.process_time()
                    print(json.dumps({"ok": True}), flush=True)
                else:
                    print(json.dumps({"counted": tally.done, "last": tally.last, "outcomes": dict(tally.outcomes),
                                      "batches": sum(c.batches for c in consumers),
                                      "cpu": time.process_time() - cpu}), flush=True)
        finally:
            stop(consumers)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
