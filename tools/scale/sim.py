"""The many-unit simulator: N units in one asyncio process, each publishing signed events at a steady rate.

Every unit (tools/scale/units.py) has its own key and MQTT connection and publishes its chained events at
QoS 1, ``rate`` a second, for ``seconds``, each awaiting its PUBACK (a unit's link sends one at a time).
Start times are spread over the first second so the fleet does not publish in lockstep. A proctor client
on ``invigil/v1/proctor/+/alerts`` notes when each event's alert arrives. The figures (ingest latency from
the stored rows' ``received_at``) are worked out by :func:`figures`; all times are ``time.time()`` on this
one machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge_app.protocol import PREFIX
from tools.scale.mqtt311 import Client
from tools.scale.units import Unit

CONNECT_BATCH = 100  # connections opened at once


@dataclass
class Run:
    units: list[Unit]
    alerts: dict[str, float] = field(default_factory=dict)  # event id -> when its proctor alert arrived
    started: float = 0.0
    publishing_done: float = 0.0
    proctor: Client | None = None  # open until the caller has waited for the alerts


async def connect_all(units: Sequence[Unit]) -> None:
    for first in range(0, len(units), CONNECT_BATCH):
        await asyncio.gather(*(unit.start() for unit in units[first:first + CONNECT_BATCH]))


async def _unit_loop(unit: Unit, start: float, rate: float, count: int) -> None:
    offset = random.random()
    for k in range(count):
        await asyncio.sleep(max(0.0, start + offset + k / rate - time.time()))
        await unit.publish_next()


async def drive(units: list[Unit], proctor_broker: tuple[str, int] | None, rate: float, seconds: float) -> Run:
    """Connect the units (and the proctor), publish ``rate`` events/s per unit for ``seconds``."""
    run = Run(units)

    def on_alert(_topic: str, payload: bytes, _retain: bool) -> None:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            run.alerts.setdefault(str(json.loads(payload)["event"]), time.time())

    if proctor_broker is not None:
        run.proctor = await Client.connect(*proctor_broker, "scale-proctor", on_message=on_alert)
        await run.proctor.subscribe([f"{PREFIX}/proctor/+/alerts"])
    await connect_all(units)
    run.started = time.time()
    count = max(1, round(rate * seconds))
    await asyncio.gather(*(_unit_loop(unit, run.started, rate, count) for unit in units))
    run.publishing_done = time.time()
    return run


async def finish(run: Run) -> None:
    if run.proctor is not None:
        await run.proctor.close()
    for first in range(0, len(run.units), CONNECT_BATCH):
        await asyncio.gather(*(unit.close() for unit in run.units[first:first + CONNECT_BATCH]))


def _percentiles(millis: list[float]) -> dict[str, float | None]:
    if not millis:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    return {"p50_ms": round(float(np.percentile(millis, 50)), 1), "p99_ms": round(float(np.percentile(millis, 99)), 1),
            "max_ms": round(max(millis), 1)}


def figures(run: Run, stored: dict[str, float]) -> dict[str, Any]:
    """``stored``: event id -> the bridge's ``received_at``. Events/s stored over first publish to last store;
    ingest (publish -> stored) and proctor (publish -> alert received) latencies."""
    sent = {event_id: t for unit in run.units for event_id, t in unit.sent.items()}
    acked = {event_id for unit in run.units for event_id in unit.acked}
    ingest = [(stored[e] - t) * 1000 for e, t in sent.items() if e in stored]
    proctor = [(run.alerts[e] - t) * 1000 for e, t in sent.items() if e in run.alerts]
    last = max(stored.values(), default=run.started)
    return {"units": len(run.units), "sent": len(sent), "acked": len(acked),
            "stored": len(stored), "lost_acked": len(acked - stored.keys()),
            "offered_per_s": round(len(sent) / max(run.publishing_done - run.started, 1e-9), 1),
            "events_per_s": round(len(stored) / max(last - run.started, 1e-9), 1),
            "ingest": _percentiles(ingest), "proctor": {"received": len(proctor), **_percentiles(proctor)},
            "reconnects": sum(unit.reconnects - 1 for unit in run.units)}
