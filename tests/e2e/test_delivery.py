"""End-to-end delivery through broker faults: a real Mosquitto that the test restarts and SIGKILLs, the bridge
(in this process, on SQLite) that it stops, and a unit built from the project's outbox, MQTT link and
receipts publishing at 40 events/s. After each fault every event is stored exactly once, no gap is flagged,
and the unit's outbox empties once the receipts arrive. Without receipts (the control) the same graceful
restart loses events: the broker restores its queues but not the bridge's shared subscriptions."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cloud_bridge.app import Bridge
from cloud_bridge.config import BridgeConfig, parse
from edge_app.link.events import EventWriter
from edge_app.link.mqtt import MqttLink, MqttLinkConfig
from edge_app.link.outbox import Outbox
from edge_app.link.receipts import Receipts
from edge_app.protocol.keys import load_or_create_key
from tests.bridge.parts import DEVICE_KEY, register
from tests.bridge.test_consumers import settle
from tests.mosquitto import Mosquitto, wait_for

DEVICE = "unit-1"
RATE = 40.0  # events per second, as measured in the issue
EVENTS = 240


class Unit:
    """The unit's delivery path: EventWriter -> Outbox -> MqttLink (with or without receipts)."""

    def __init__(self, root: Path, port: int, bridge_key_file: Path, receipts: bool = True) -> None:
        self.outbox = Outbox(root / "outbox.db")
        config = MqttLinkConfig(host="127.0.0.1", port=port, keepalive=5, backoff_min=0.05, backoff_max=0.5,
                                receipt_timeout=1.0, will_delay=30)
        self.receipts = Receipts(self.outbox, load_or_create_key(bridge_key_file).public_key(), DEVICE, 1.0) \
            if receipts else None
        self.link = MqttLink(config, DEVICE, self.outbox, receipts=self.receipts)
        self.writer = EventWriter(DEVICE, DEVICE_KEY, self.outbox, (640, 480))
        self.written = 0

    def produce(self, count: int, faults: dict[int, Callable[[], None]]) -> None:
        """Write ``count`` events at RATE, running ``faults[i]`` (on this thread) before event i."""
        started = time.monotonic()
        for index in range(count):
            if index in faults:
                faults[index]()
            delay = started + index / RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.writer.write({"type": "alert", "id": f"a{index}", "kind": "phone", "phase": "start",
                               "severity": "warning", "confidence": 0.9})
            self.written += 1
            self.link.wake()

    def close(self) -> None:
        self.link.stop(5)
        self.outbox.close()


class Rig:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.broker = Mosquitto(root / "broker")
        self.broker.start()
        self.config: BridgeConfig = parse({
            "database_url": f"sqlite:///{root / 'bridge.db'}", "key_file": str(root / "bridge.key"),
            "gap_after": 30, "mqtt": {"host": "127.0.0.1", "port": self.broker.port, "workers": 2, "keepalive": 5,
                                      "client_prefix": f"bridge-{self.broker.port}"}}, environ={})
        self.bridge: Bridge | None = None
        self.start_bridge(first=True)

    def start_bridge(self, first: bool = False) -> None:
        self.bridge = Bridge(self.config, http=False)
        if first:
            register(self.bridge.store, DEVICE, DEVICE_KEY)
        self.bridge.start()
        assert self.bridge.wait_connected(15)
        if first:
            settle(self.bridge.consumers, self.broker)

    def stop_bridge(self) -> None:
        assert self.bridge is not None
        self.bridge.stop()
        self.bridge = None

    def stored(self) -> tuple[int, int, int, int, int]:
        """(rows, distinct event ids, min seq, max seq, flagged rows) of the unit's events in the bridge's store."""
        with sqlite3.connect(self.root / "bridge.db") as db:
            row = db.execute("SELECT COUNT(*), COUNT(DISTINCT event_id), COALESCE(MIN(seq), 0), "
                             "COALESCE(MAX(seq), 0), COUNT(flag) FROM events WHERE device_id = ?",
                             (DEVICE,)).fetchone()
        return tuple(int(v) for v in row)  # type: ignore[return-value]

    def close(self) -> None:
        if self.bridge is not None:
            self.bridge.stop()
        self.broker.stop()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    made = Rig(tmp_path)
    yield made
    made.close()


def run(rig: Rig, faults: dict[int, Callable[[], None]], receipts: bool = True) -> Unit:
    unit = Unit(rig.root, rig.broker.port, rig.config.key_file, receipts)
    unit.link.start()
    wait_for(lambda: unit.link.connected, what="the unit to connect")
    producer = threading.Thread(target=unit.produce, args=(EVENTS, faults))
    producer.start()
    producer.join(120)
    assert not producer.is_alive() and unit.written == EVENTS
    return unit


def assert_all_stored_once(rig: Rig, unit: Unit) -> None:
    wait_for(lambda: unit.outbox.count() == 0, 60, "the unit's outbox to empty on receipts")
    assert rig.stored() == (EVENTS, EVENTS, 1, EVENTS, 0)  # each once, none missing, no gap flagged
    assert unit.receipts is not None and unit.receipts.stored == EVENTS
    unit.close()


def test_a_graceful_broker_restart_loses_nothing(rig: Rig) -> None:
    unit = run(rig, {80: rig.broker.restart})
    assert_all_stored_once(rig, unit)


def test_two_broker_sigkills_while_publishing_lose_nothing(rig: Rig) -> None:
    def kill_and_start() -> None:
        rig.broker.kill()
        time.sleep(0.3)
        rig.broker.start()

    unit = run(rig, {60: kill_and_start, 150: kill_and_start})
    assert_all_stored_once(rig, unit)


def test_the_bridge_down_while_the_broker_is_killed_loses_nothing(rig: Rig) -> None:
    kept: list[tuple[int, int]] = []

    def bridge_away() -> None:
        rig.stop_bridge()
        rig.broker.kill()  # the queue the broker held for the bridge's sessions dies with it
        time.sleep(0.5)
        rig.broker.start()

    def bridge_back() -> None:
        kept.append((unit_ref[0].outbox.count(), unit_ref[0].link.acked))
        rig.start_bridge()

    unit_ref: list[Unit] = []
    unit = Unit(rig.root, rig.broker.port, rig.config.key_file)
    unit_ref.append(unit)
    unit.link.start()
    wait_for(lambda: unit.link.connected, what="the unit to connect")
    producer = threading.Thread(target=unit.produce, args=(EVENTS, {60: bridge_away, 180: bridge_back}))
    producer.start()
    producer.join(120)
    assert not producer.is_alive()
    waiting, acked = kept[0]
    assert waiting >= 100 and acked >= 100  # the broker acknowledged them; the unit kept them all the same
    assert_all_stored_once(rig, unit)


def test_control_without_receipts_a_graceful_restart_loses_events(rig: Rig) -> None:
    unit = run(rig, {80: rig.broker.restart}, receipts=False)
    wait_for(lambda: unit.outbox.count() == 0, 30, "the outbox to empty on PUBACKs")
    time.sleep(2.0)  # whatever is on its way arrives
    rows, distinct, _low, _high, _flags = rig.stored()
    assert rows == distinct and rows < EVENTS  # deleted on PUBACK, dropped by the broker: lost for good
    unit.close()
