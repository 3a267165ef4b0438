"""The simulator (tools/scale/sim.py, units.py, mqtt311.py) against a real Mosquitto: what its units publish is
what a unit makes (signed, chained, verifiable with the unit's public key), every event is acknowledged, and
the figures count what a stand-in bridge stored and republished to the proctor topic."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from edge_app.protocol import ChainVerifier, decode_event, proctor_topic
from tests.mosquitto import Mosquitto
from tools.scale.mqtt311 import Client
from tools.scale.sim import drive, figures, finish
from tools.scale.units import Unit

UNITS, RATE, SECONDS = 5, 10.0, 0.5  # five events per unit


async def simulate(port: int) -> tuple[dict[str, object], list[Unit], dict[str, list[bytes]]]:
    stored: dict[str, float] = {}
    payloads: dict[str, list[bytes]] = {}
    bridge: Client | None = None

    def on_event(topic: str, payload: bytes, _retain: bool) -> None:  # a stand-in bridge: note, republish
        event = decode_event(payload, None)
        stored[event.event_id] = time.time()
        payloads.setdefault(topic.split("/")[3], []).append(payload)
        assert bridge is not None
        asyncio.get_running_loop().create_task(
            bridge.publish(proctor_topic("exam-1"), json.dumps({"event": event.event_id}).encode()))

    bridge = await Client.connect("127.0.0.1", port, "stand-in-bridge", on_message=on_event)
    await bridge.subscribe(["invigil/v1/dev/+/event"])
    units = [Unit(f"sim-{i}", [("127.0.0.1", port)]) for i in range(UNITS)]
    run = await drive(units, ("127.0.0.1", port), RATE, SECONDS)
    for _ in range(200):
        if len(run.alerts) >= UNITS * 5:
            break
        await asyncio.sleep(0.02)
    await finish(run)
    await bridge.close()
    return figures(run, stored), units, payloads


def test_the_simulated_units_publish_what_units_make(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path)
    broker.start()
    try:
        result, units, payloads = asyncio.run(simulate(broker.port))
    finally:
        broker.stop()
    assert result["sent"] == result["acked"] == result["stored"] == UNITS * 5
    assert result["lost_acked"] == 0
    assert result["proctor"]["received"] == UNITS * 5  # type: ignore[index]
    for unit in units:
        key, chain = unit.key.public_key(), ChainVerifier()
        for seq, payload in enumerate(payloads[unit.device_id], start=1):
            event = decode_event(payload, key)  # the unit's own signature
            assert event.seq == seq and chain.check(event, payload) is None  # chained in order, no gap
