"""The bridge's MQTT side against a real Mosquitto: shared-subscription consumers, persistent sessions, the
retained status, a failing handler, batches acknowledged once handled; and the whole Bridge starting,
answering HTTP and stopping cleanly."""

from __future__ import annotations

import getpass
import http.client
import json
import socket
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from sqlalchemy.exc import OperationalError

from cloud_bridge.app import Bridge
from cloud_bridge.config import BridgeConfig, MqttConfig, parse
from cloud_bridge.mqtt import Consumer, Publisher, subscriptions
from edge_app.protocol import device_topic
from edge_app.protocol.commands import open_signed, seal
from edge_app.protocol.keys import load_or_create_key
from edge_app.protocol.transport import status_payload
from tests.bridge.parts import DEVICE_KEY, PHOTO, event_payloads, register
from tests.mosquitto import Mosquitto, free_port, wait_for


class Received:
    """A handler that keeps (topic, payload) pairs, thread-safe."""

    def __init__(self, fail_first: int = 0) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.fail_first = fail_first

    def __call__(self, topic: str, payload: bytes) -> None:
        with self.lock:
            self.messages.append((topic, payload))
            if len(self.messages) <= self.fail_first:
                raise RuntimeError("a handler bug")

    def payloads(self) -> list[bytes]:
        with self.lock:
            return [p for _, p in self.messages]


def mqtt_config(server: Mosquitto, prefix: str = "bridge-t", **fields: object) -> MqttConfig:
    return MqttConfig.model_validate({"host": "127.0.0.1", "port": server.port, "client_prefix": prefix,
                                      "keepalive": 5, **fields})


class Device:
    """A unit's MQTT client (plain paho, as a device would connect)."""

    def __init__(self, server: Mosquitto, device_id: str = "unit-1") -> None:
        self.device_id = device_id
        self.received: list[tuple[str, bytes, bool]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device_id,
                                  protocol=MQTTProtocolVersion.MQTTv5)
        self.client.on_message = lambda _c, _u, m: self.received.append((m.topic, bytes(m.payload), bool(m.retain)))
        self.client.connect("127.0.0.1", server.port)
        self.client.loop_start()

    def publish(self, leaf: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(device_topic(self.device_id, leaf), payload, qos=1, retain=retain).wait_for_publish(10)

    def subscribe_commands(self) -> None:
        result, _mid = self.client.subscribe(device_topic(self.device_id, "cmd/#"), qos=1)
        assert result == mqtt.MQTT_ERR_SUCCESS

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def started(config: MqttConfig, index: int, handler: Received) -> Consumer:
    consumer = Consumer(config, index, handler)
    consumer.start()
    assert consumer.subscribed.wait(10), f"consumer {index} did not subscribe"
    return consumer


def settle(consumers: list[Consumer], server: Mosquitto) -> None:
    """Wait until the consumers' subscriptions are in place: a probe on a shared leaf reaches one of them."""
    probe = Device(server, "probe-0")
    before = sum(c.handled for c in consumers)
    probe.publish("stats", b"probe")
    wait_for(lambda: sum(c.handled for c in consumers) > before, what="the subscriptions")
    probe.close()


def test_subscriptions_share_the_device_leaves_and_consumer_0_takes_status() -> None:
    assert subscriptions(0) == ["$share/bridge/invigil/v1/dev/+/event", "$share/bridge/invigil/v1/dev/+/pair",
                                "$share/bridge/invigil/v1/dev/+/stats", "invigil/v1/dev/+/status"]
    assert subscriptions(1) == subscriptions(0)[:3]


def test_two_consumers_split_the_messages(broker: Mosquitto) -> None:
    config = mqtt_config(broker)
    handlers = [Received(), Received()]
    consumers = [started(config, i, handlers[i]) for i in range(2)]
    settle(consumers, broker)
    for handler in handlers:
        handler.messages.clear()
    device = Device(broker)
    sent = event_payloads(40)
    for payload in sent:
        device.publish("event", payload)
    wait_for(lambda: sum(len(h.payloads()) for h in handlers) >= len(sent), what="all 40 events")
    first, second = (h.payloads() for h in handlers)
    assert first and second  # each got some
    assert sorted(first + second) == sorted(sent)  # together all, none twice
    assert not set(first) & set(second)
    device.close()
    for consumer in consumers:
        consumer.stop()


def test_a_stopped_consumer_gets_what_was_queued_for_it(broker: Mosquitto) -> None:
    config = mqtt_config(broker, workers=1)
    handler = Received()
    consumer = started(config, 0, handler)
    settle([consumer], broker)
    consumer.stop()
    device = Device(broker)
    sent = event_payloads(10)
    for payload in sent:
        device.publish("event", payload)  # the broker holds them in the consumer's session
    handler.messages.clear()
    again = started(config, 0, handler)  # the same client id: its persistent session
    wait_for(lambda: len(handler.payloads()) >= len(sent), what="the queued events")
    assert sorted(handler.payloads()) == sorted(sent)
    device.close()
    again.stop()


def test_queued_messages_survive_a_restart_of_the_bridge_process_and_of_the_server(broker: Mosquitto
                                                                                    ) -> None:
    config = mqtt_config(broker, workers=1)
    consumer = started(config, 0, Received())
    settle([consumer], broker)
    consumer.stop()
    device = Device(broker)
    sent = event_payloads(5)
    for payload in sent:
        device.publish("event", payload)
    device.close()
    broker.restart()  # persistence keeps the session and its queue
    handler = Received()
    again = started(config, 0, handler)
    wait_for(lambda: len(handler.payloads()) >= len(sent), what="the queued events after a restart")
    assert sorted(handler.payloads()) == sorted(sent)
    again.stop()


def test_retained_status_reaches_consumer_0_only(broker: Mosquitto) -> None:
    device = Device(broker)
    device.publish("status", status_payload("online", 1), retain=True)
    config = mqtt_config(broker)
    handlers = [Received(), Received()]
    consumers = [started(config, i, handlers[i]) for i in range(2)]
    wait_for(lambda: handlers[0].messages, what="the retained status")
    settle(consumers, broker)
    assert (device_topic("unit-1", "status"), status_payload("online", 1)) in handlers[0].messages
    assert not any(topic.endswith("/status") for topic, _ in handlers[1].messages)
    device.close()
    for consumer in consumers:
        consumer.stop()


def test_a_message_whose_handler_raises_is_retried_until_handled(broker: Mosquitto) -> None:
    handler = Received()
    consumer = started(mqtt_config(broker, workers=1), 0, handler)
    settle([consumer], broker)
    handler.fail_first = len(handler.payloads()) + 2  # the database is away for the next two attempts
    device = Device(broker)
    sent = event_payloads(4)
    for payload in sent:
        device.publish("event", payload)
    wait_for(lambda: consumer.handled == 5 and consumer.retrying == 0, what="every event despite the failures")
    attempts = handler.payloads()
    assert [attempts.count(payload) for payload in sent] == [2, 2, 1, 1]  # the two that failed came again
    assert consumer.connected.is_set()
    device.close()
    consumer.stop()


class Batches:
    """A batch handler that keeps each batch's payloads; a payload in ``failing`` comes back as a database error
    (the consumer retries that one on its own, through its plain handler)."""

    def __init__(self) -> None:
        self.batches: list[list[bytes]] = []
        self.failing: set[bytes] = set()
        self.lock = threading.Lock()

    def __call__(self, messages: list[tuple[str, bytes]]) -> list[object]:
        with self.lock:
            self.batches.append([payload for _, payload in messages])
        return [OperationalError("INSERT", {}, ConnectionError("away")) if payload in self.failing else "stored"
                for _, payload in messages]

    def payloads(self) -> list[bytes]:
        with self.lock:
            return [payload for batch in self.batches for payload in batch]


def test_queued_messages_come_in_batches_acknowledged_once_handled(broker: Mosquitto) -> None:
    config = mqtt_config(broker, workers=1, batch_max=8, batch_wait_ms=300)
    handler, batches = Received(), Batches()
    consumer = Consumer(config, 0, handler, batches)
    consumer.start()
    assert consumer.subscribed.wait(10)
    settle([consumer], broker)
    consumer.stop()
    device = Device(broker)
    sent = event_payloads(20)
    for payload in sent:
        device.publish("event", payload)  # queued in the consumer's session
    batches.batches.clear()
    batches.failing = {sent[5]}  # the database refuses this one: retried alone, the rest acknowledged
    again = Consumer(config, 0, handler, batches)
    again.start()
    assert again.connected.wait(10)
    wait_for(lambda: again.handled == len(sent) and again.retrying == 0, what="all 20 handled")
    assert sorted(batches.payloads()) == sorted(sent) and handler.payloads()[-1:] == [sent[5]]
    assert max(len(batch) for batch in batches.batches) > 1 and all(len(b) <= 8 for b in batches.batches)
    again.stop()
    batches.batches.clear()
    third = Consumer(config, 0, Received(), batches)  # every message was acknowledged: nothing comes again
    third.start()
    assert third.subscribed.wait(10)
    settle([third], broker)
    assert [payload for payload in batches.payloads() if payload != b"probe"] == []
    device.close()
    third.stop()


def test_the_publisher_reports_a_refused_connection(tmp_path: Path) -> None:
    # anonymous access off and no accounts: every connection is refused
    server = Mosquitto(tmp_path, f"listener {free_port()} 127.0.0.1\nallow_anonymous false\npersistence false\n"
                       f"user {getpass.getuser()}\n")
    server.start()
    try:
        publisher = Publisher(mqtt_config(server))
        refused = threading.Event()
        original: Any = publisher.client.on_connect

        def on_connect(*args: Any) -> None:
            original(*args)
            refused.set()

        publisher.client.on_connect = on_connect
        publisher.start()
        assert refused.wait(15)
        assert not publisher.connected.is_set()
        publisher.stop()
    finally:
        server.stop()


# -- the whole bridge ----------------------------------------------------------------------------------

def bridge_config(tmp_path: Path, server: Mosquitto) -> BridgeConfig:
    return parse({"database_url": f"sqlite:///{tmp_path / 'bridge.db'}", "key_file": str(tmp_path / "bridge.key"),
                  "mqtt": {"host": "127.0.0.1", "port": server.port, "workers": 2, "keepalive": 5},
                  "http": {"host": "127.0.0.1", "port": 0, "threads": 4}, "rules": {"preset": "strict"}},
                 environ={})


def test_the_bridge_starts_answers_and_stops_cleanly(tmp_path: Path, broker: Mosquitto) -> None:
    before = set(threading.enumerate())
    bridge = Bridge(bridge_config(tmp_path, broker))
    bridge.start()
    assert bridge.wait_connected(10)
    host, port = bridge.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)  # kept open (keep-alive) over the stop
    connection.request("GET", "/healthz")
    response = connection.getresponse()
    assert response.status == 200 and json.loads(response.read()) == {"ok": True}
    bridge.stop()
    wait_for(lambda: not [t for t in threading.enumerate() if t not in before and t.is_alive()], 10,
             "the bridge's threads to end")
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, int(port)))  # the port is free again
    connection.close()


def test_a_bridge_never_started_releases_its_port_and_threads(tmp_path: Path, broker: Mosquitto) -> None:
    before = set(threading.enumerate())
    bridge = Bridge(bridge_config(tmp_path, broker))  # the HTTP server's workers start here already
    port = int(bridge.url.rsplit(":", 1)[1])
    bridge.stop()
    wait_for(lambda: not [t for t in threading.enumerate() if t not in before and t.is_alive()], 10,
             "the server's worker threads to end")
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))


def test_a_device_pairs_through_the_running_bridge(tmp_path: Path, broker: Mosquitto) -> None:
    bridge = Bridge(bridge_config(tmp_path, broker), http=False)
    register(bridge.store, "unit-1", DEVICE_KEY)
    view = bridge.services.sessions.create("math-101", "cand-7", PHOTO)
    bridge.start()
    try:
        assert bridge.wait_connected(10)
        consumers = [c for c in bridge.consumers if isinstance(c, Consumer)]  # Mosquitto: MQTT consumers
        assert len(consumers) == len(bridge.consumers)
        settle(consumers, broker)
        device = Device(broker)
        device.subscribe_commands()
        device.publish("pair", seal("pair_request", {"d": "unit-1", "code": view.pairing_code}, DEVICE_KEY,
                                    1_800_000_000_000))
        wait_for(lambda: {t.rsplit("/", 1)[1] for t, _, _ in device.received} >= {"pair", "session_start"},
                 what="the pair reply and the session start")
        public = load_or_create_key(tmp_path / "bridge.key").public_key()
        replies = {t.rsplit("/", 1)[1]: open_signed(t.rsplit("/", 1)[1], p, public) for t, p, _ in device.received}
        assert replies["pair"]["ok"] is True and replies["session_start"]["session"] == view.session_id
        assert replies["session_start"]["rules"] == {"preset": "strict"}
        device.close()
        later = Device(broker, "unit-1b")  # a unit that (re)connects later learns its session (retained)
        later.client.subscribe(device_topic("unit-1", "cmd/session_start"), qos=1)
        wait_for(lambda: later.received, what="the retained session start")
        assert later.received[0][2] and open_signed("session_start", later.received[0][1], public)["session"] == \
            view.session_id
        later.close()
    finally:
        bridge.stop()
