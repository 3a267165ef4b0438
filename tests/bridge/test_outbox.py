"""The bridge's outbox on SQLite and PostgreSQL: published after the commit only, marked sent on the PUBACK,
republished when nobody is publishing it; and a bridge process killed between its commit and its publish
publishes on restart through a real Mosquitto."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from sqlalchemy import select

from cloud_bridge.app import Bridge
from cloud_bridge.dispatch import DeviceCommands
from cloud_bridge.mqtt import Publisher
from cloud_bridge.outbox import BridgeOutbox
from cloud_bridge.sessions import Sessions
from cloud_bridge.store import Store
from cloud_bridge.store.models import EventRow, OutboxMessage, ProctorAlert
from edge_app.protocol import device_topic, proctor_topic
from edge_app.protocol.commands import open_signed, seal
from tests.bridge.parts import BRIDGE_KEY, DEVICE_KEY, PHOTO, Clock, Published, count, event_payloads, register
from tests.bridge.test_consumers import bridge_config, mqtt_config
from tests.mosquitto import Mosquitto, wait_for

ROOT = Path(__file__).resolve().parents[2]


class Info:
    """Stands for paho's MQTTMessageInfo: acknowledged once the test says so."""

    def __init__(self) -> None:
        self.acked = False

    def is_published(self) -> bool:
        return self.acked


class Acked(Published):
    """A publish whose PUBACKs the test hands out."""

    def __init__(self) -> None:
        super().__init__()
        self.infos: list[Info] = []

    def __call__(self, topic: str, payload: bytes, qos: int, retain: bool) -> Info:  # type: ignore[override]
        super().__call__(topic, payload, qos, retain)
        self.infos.append(Info())
        return self.infos[-1]


def test_a_message_goes_out_after_its_commit_and_never_after_a_rollback(store: Store, clock: Clock) -> None:
    published = Published()
    outbox = BridgeOutbox(store, published, clock)
    with store.session() as session, session.begin():
        outbox.add(session, "invigil/v1/proctor/x/alerts", b"one")
        assert published.messages == []  # not before the commit
    assert published.messages == [("invigil/v1/proctor/x/alerts", b"one", 1, False)]
    with pytest.raises(RuntimeError), store.session() as session, session.begin():
        outbox.add(session, "invigil/v1/proctor/x/alerts", b"two")
        raise RuntimeError("the transaction fails")
    with store.session() as session, session.begin():  # the same session type again: nothing stale comes out
        outbox.add(session, "invigil/v1/proctor/x/alerts", b"three", retain=True)
    assert [m[1] for m in published.messages] == [b"one", b"three"] and published.messages[1][3] is True
    assert count(store, OutboxMessage) == 2


def test_rows_are_marked_sent_on_their_puback_and_republished_when_nobody_publishes_them(store: Store,
                                                                                       clock: Clock) -> None:
    acked = Acked()
    outbox = BridgeOutbox(store, acked, clock, stale_after=5.0, resend_after=60.0, keep_sent=3600.0)
    with store.session() as session, session.begin():
        for n in range(3):
            outbox.add(session, "t/a", bytes([n]))
    assert outbox.poll() == 0 and outbox.pending() == 3  # handed to the broker, no PUBACK yet
    acked.infos[0].acked = acked.infos[2].acked = True
    assert outbox.poll() == 2 and outbox.pending() == 1
    assert len(acked.messages) == 3  # in flight: not published again meanwhile
    clock.advance(61)  # no PUBACK for a minute: published again
    outbox.poll()
    outbox.poll()
    assert [m[1] for m in acked.messages] == [b"\x00", b"\x01", b"\x02", b"\x01"]
    acked.infos[-1].acked = True
    assert outbox.poll() == 1 and outbox.pending() == 0
    # a row written by a process without a broker connection (a dead-letter replay) goes out once it is old
    with store.session() as session, session.begin():
        BridgeOutbox(store, None, clock).add(session, "t/b", b"replayed")
    outbox.poll()
    assert acked.messages[-1][1] == b"\x01"
    clock.advance(5)
    outbox.poll()
    assert acked.messages[-1][1] == b"replayed"
    acked.infos[-1].acked = True
    outbox.poll()
    clock.advance(3601)
    outbox._next_prune = 0.0
    outbox.poll()  # sent rows older than keep_sent are pruned
    assert count(store, OutboxMessage) == 0


def test_session_commands_carry_increasing_numbers_and_go_with_their_transaction(store: Store, clock: Clock,
                                                                                sessions: Sessions) -> None:
    published = Published()
    commands = DeviceCommands(BridgeOutbox(store, published, clock), BRIDGE_KEY, clock)
    view = sessions.create("math-101", "cand-7", PHOTO)
    paired = sessions.pair("unit-1", view.pairing_code or "",
                           also=lambda s, row: commands.send("unit-1", "pair", {"ok": True}, session=s))
    sessions.end(paired.session_id, also=commands.ended)
    topics = [t.rsplit("/", 1)[1] for t, *_ in published.messages]
    assert topics == ["pair", "session_start", "session_stop"]
    assert published.messages[1][1:] == (b"", 1, True)  # the retained start cleared
    stop = open_signed("session_stop", published.messages[2][1], BRIDGE_KEY.public_key(), to="unit-1")
    commands.send("unit-1", "thresholds", {"session": paired.session_id, "rules": {}})
    later = open_signed("thresholds", published.messages[3][1], BRIDGE_KEY.public_key(), to="unit-1")
    assert stop["session"] == paired.session_id and later["c"] > stop["c"] >= 1
    assert "c" not in open_signed("pair", published.messages[0][1], BRIDGE_KEY.public_key())
    with pytest.raises(RuntimeError):  # a pairing whose transaction fails sends nothing
        other = sessions.create("math-101", "cand-8", PHOTO)

        def fail(session: object, row: object) -> None:
            commands.send("unit-2", "pair", {"ok": True}, session=session)  # type: ignore[arg-type]
            raise RuntimeError("after the command was written")
        sessions.pair("unit-2", other.pairing_code or "", also=fail)
    assert len(published.messages) == 4 and sessions.active_for_device("unit-2") is None


# -- a bridge process killed between its commit and its publish --------------------------------------------

KILLED = """
import os, signal, sys
from cloud_bridge.services import Services
from cloud_bridge.store import Store
from tests.bridge.parts import BRIDGE_KEY

def killed(topic, payload, qos, retain):  # the process dies after the commit, before anything is published
    os.kill(os.getpid(), signal.SIGKILL)

services = Services.build(Store(sys.argv[1]), killed, BRIDGE_KEY)
print(services.dispatcher.handle(sys.argv[2], bytes.fromhex(sys.argv[3])), flush=True)
"""


class Watcher:
    """A paho subscriber to ``topics``; keeps (topic, payload, retained)."""

    def __init__(self, port: int, topics: list[str]) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="watcher", protocol=MQTTProtocolVersion.MQTTv5)
        self.client.on_connect = lambda c, *_a: c.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        wait_for(subscribed.is_set, what="the watcher's subscription")

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.parametrize("leaf", ["event", "pair"])
def test_a_bridge_killed_after_its_commit_and_before_its_publish_publishes_on_restart(
        tmp_path: Path, broker: Mosquitto, leaf: str) -> None:
    config = bridge_config(tmp_path, broker)
    store = Store(config.database_url)
    register(store, "unit-1", DEVICE_KEY)
    sessions = Sessions(store)
    view = sessions.create("math-101", "cand-7", PHOTO)
    if leaf == "event":
        sessions.pair("unit-1", view.pairing_code or "")
        payload = event_payloads(1)[0]
    else:
        payload = seal("pair_request", {"d": "unit-1", "code": view.pairing_code}, DEVICE_KEY, 1_800_000_000_000)
    store.close()
    killed = subprocess.run([sys.executable, "-c", KILLED, config.database_url, device_topic("unit-1", leaf),
                             payload.hex()], cwd=ROOT, capture_output=True, timeout=60)
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    bridge = Bridge(config, http=False)  # the bridge comes back: what it committed is in its outbox
    if leaf == "event":
        assert count(bridge.store, EventRow) == count(bridge.store, ProctorAlert) == 1
        expected = [proctor_topic("math-101")]
    else:
        assert bridge.services.sessions.active_for_device("unit-1") is not None
        expected = [device_topic("unit-1", "cmd/pair"), device_topic("unit-1", "cmd/session_start")]
    assert bridge.services.outbox.pending() == len(expected)
    watcher = Watcher(broker.port, [proctor_topic("math-101"), device_topic("unit-1", "cmd/#")])
    bridge.services.outbox.stale_after = 0.5
    bridge.start()
    try:
        wait_for(lambda: len(watcher.messages) >= len(expected), 20, "the republish after the restart")
        wait_for(lambda: bridge.services.outbox.pending() == 0, 10, "the outbox rows marked sent")
        assert [t for t, _, _ in watcher.messages] == expected  # once each, in order
        if leaf == "event":
            assert json.loads(watcher.messages[0][1])["event"] == json.loads(payload)["id"]
        else:
            start = open_signed("session_start", watcher.messages[1][1], BRIDGE_KEY.public_key(), to="unit-1")
            assert start["session"] == view.session_id and watcher.messages[1][2] is False  # live, not from retain
        with bridge.store.session() as session:
            assert all(row.sent_at is not None for row in session.scalars(select(OutboxMessage)))
    finally:
        watcher.close()
        bridge.stop()


def test_a_message_published_while_the_broker_is_away_is_marked_sent_once_it_is_back(
        tmp_path: Path, broker: Mosquitto) -> None:
    """paho queues a QoS 1 publish made while disconnected and sends it after the reconnect, but its
    ``is_published()`` raises for it ever after: the relay failed every turn from then on, marking nothing sent
    and republishing nothing (found by `make faults`, a broker restart)."""
    store = Store(f"sqlite:///{tmp_path / 'bridge.db'}")
    publisher = Publisher(mqtt_config(broker, "outbox-t"))
    publisher.start()
    assert publisher.connected.wait(10)
    outbox = BridgeOutbox(store, publisher.publish)
    try:
        broker.stop()
        wait_for(lambda: not publisher.connected.is_set(), what="the publisher to see the broker go")
        with store.session() as session, session.begin():
            outbox.add(session, proctor_topic("math-101"), b"while away")
        assert outbox.poll() == 0 and outbox.pending() == 1  # not acknowledged yet; and no RuntimeError
        broker.start()
        wait_for(lambda: outbox.poll() == 1, 20, "the PUBACK after the reconnect")
        assert outbox.pending() == 0 and outbox.published == 1  # sent once, by paho's queue
    finally:
        publisher.stop()
        store.close()
