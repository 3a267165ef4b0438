"""The whole system as deployed (tools/demo/stack.py): a real Mosquitto with generated accounts and rights,
the bridge and the camera unit as child processes, a scenario as the camera, pairing by the QR code on the
PC screen. What the proctor receives on the alerts topic is checked against what the unit raised."""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge_app.link.events import EventWriter
from edge_app.link.outbox import Outbox
from edge_app.protocol import device_topic
from edge_app.protocol.keys import load_or_create_key
from tests.mosquitto import mosquitto_binary, wait_for
from tools.demo.__main__ import jpeg_of
from tools.demo.clients import PcExamClient, ProctorWatcher
from tools.demo.stack import Stack
from tools.fixtures import photo

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "build" / "scenarios"
EXAM = "exam-e2e"


@pytest.fixture
def stack(tmp_path: Path) -> Any:
    mosquitto_binary()  # skips with the install command when there is no broker
    scenario = SCENARIOS / "second_person"
    if not (scenario / "truth.json").is_file():
        pytest.fail(f"{scenario} is not rendered: run `make scenarios`")
    running = Stack(tmp_path / "stack")
    running.prepare(scenario, realtime=False)
    running.start_broker()
    running.start_bridge()
    yield running
    running.stop()


def lines_of(process: Any) -> queue.Queue[dict[str, Any]]:
    out: queue.Queue[dict[str, Any]] = queue.Queue()

    def pump() -> None:
        for raw in iter(process.stdout.readline, b""):
            out.put(json.loads(raw))
    threading.Thread(target=pump, daemon=True).start()
    return out


def drain(source: queue.Queue[dict[str, Any]], into: list[dict[str, Any]]) -> None:
    while not source.empty():
        into.append(source.get())


def test_scenario_alerts_reach_the_proctor_through_a_broker_restart(stack: Stack) -> None:
    watcher = ProctorWatcher("127.0.0.1", stack.broker_port, "proctor", stack.proctor_password, EXAM)
    watcher.start()
    assert watcher.subscribed.wait(10)
    truth = json.loads((SCENARIOS / "second_person" / "truth.json").read_text())
    pc = PcExamClient(stack.url, stack.tokens["client"])
    session = pc.create_session(EXAM, "cand-7", jpeg_of(photo(truth["enrolled"])))
    stack.screen.parent.mkdir(parents=True, exist_ok=True)
    stack.screen.write_bytes(pc.qr_png(session["session_id"]))
    edge = stack.start_edge()
    messages: list[dict[str, Any]] = []
    output = lines_of(edge)
    wait_for(lambda: pc.session(session["session_id"])["state"] == "paired", 60, "pairing by the QR code")
    stack.screen.unlink()
    wait_for(lambda: (drain(output, messages), any(m.get("state") == "session_started" for m in messages))[1],
             30, "session_start at the unit")
    stack.broker.restart()  # mid-run: the unit keeps its events in the outbox, the bridge its session
    assert edge.wait(240) == 0, stack.tail("edge.log")
    stopped_ms = time.time() * 1000
    drain(output, messages)
    raised = [m for m in messages if m["type"] == "alert"]
    started = [m for m in raised if m["phase"] == "start"]
    assert "extra_person" in {m["kind"] for m in started}

    delivered: list[dict[str, Any]] = []

    def all_arrived() -> bool:
        drain(watcher.alerts, delivered)
        return sum(r["kind"] != "device_offline" for r in delivered) >= len(raised)

    wait_for(all_arrived, 30, f"{len(raised)} alerts at the proctor topic")
    time.sleep(0.5)
    drain(watcher.alerts, delivered)
    watcher.stop()
    # the broker restart raised no device_offline (the unit was back within the grace); the unit stopping
    # at the end of the scenario, while the session is still on, may raise one
    offline = [r for r in delivered if r["kind"] == "device_offline"]
    assert all(r["phase"] == "start" and r["t"] >= stopped_ms - 1000 for r in offline), offline
    received = [r for r in delivered if r["kind"] != "device_offline"]
    assert len(received) == len(raised)  # nothing lost, nothing twice
    assert len({r["event"] for r in received}) == len(received)
    assert [(r["kind"], r["phase"]) for r in received] == [(m["kind"], m["phase"]) for m in raised]
    assert {r["session"] for r in received} == {session["session_id"]}
    assert {r["candidate"] for r in received} == {"cand-7"}
    assert all(r["flag"] is None for r in received)  # no gap, no broken chain
    with sqlite3.connect(stack.root / "bridge.db") as db:
        stored = db.execute("SELECT COUNT(*), COUNT(DISTINCT event_id), MAX(seq) FROM events").fetchone()
        snapshots = db.execute("SELECT COUNT(*) FROM evidence").fetchone()[0]
    assert stored[0] == stored[1] == stored[2] == len(raised)
    assert snapshots == len(started)  # every start's snapshot was uploaded and matched its digest


def _client(stack: Stack, user: str, password: str) -> mqtt.Client:
    # the broker binds a unit's account to one client id, its device id
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=MQTTProtocolVersion.MQTTv5)
    client.username_pw_set(user, password)
    client.connect("127.0.0.1", stack.broker_port)
    client.loop_start()
    return client


def test_bad_payloads_land_in_dead_letters_and_a_unit_cannot_speak_for_another(stack: Stack) -> None:
    password = (stack.root / "edge" / "mqtt.password").read_text().strip()
    unit = _client(stack, stack.device_id, password)
    topic = device_topic(stack.device_id, "event")
    forged_key = load_or_create_key(stack.root / "forged.key")
    outbox = Outbox(stack.root / "forged.db")
    EventWriter(stack.device_id, forged_key, outbox, (640, 480)).write(
        {"type": "alert", "id": "x", "kind": "phone", "phase": "start", "severity": "warning", "confidence": 0.9})
    forged = outbox.pending()[0][2]
    for payload in (b"not json", b"{" + b" " * 400 + b"}", forged):
        unit.publish(topic, payload, qos=1).wait_for_publish(5)
    # another unit's topic: the broker's rights refuse it
    unit.publish(device_topic("other-unit", "event"), forged, qos=1).wait_for_publish(5)
    db_path = stack.root / "bridge.db"

    def reasons() -> list[str]:
        with sqlite3.connect(db_path) as db:
            return [row[0] for row in db.execute("SELECT reason FROM dead_letters ORDER BY id")]

    wait_for(lambda: len(reasons()) >= 3, 15, "three dead letters")
    assert sorted(reasons()) == ["bad_signature", "malformed", "oversized"]  # two workers: any order
    # the bridge keeps going: a heartbeat from the unit is still taken
    unit.publish(device_topic(stack.device_id, "status"), b'{"state":"online","t":1}', qos=1, retain=True)

    def online() -> bool:
        with sqlite3.connect(db_path) as db:
            return db.execute("SELECT status FROM devices").fetchone()[0] == "online"
    wait_for(online, 10, "the unit's status after the bad payloads")
    time.sleep(0.5)
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM dead_letters WHERE topic LIKE '%other-unit%'").fetchone()[0] == 0
    unit.loop_stop()
    outbox.close()
