"""The MQTT link's other traffic against a real Mosquitto: commands on cmd/<name> reach ``on_command`` (retained
ones on every connect, also after a broker restart), ``send()`` publishes stats and pair requests and keeps the
newest EXTRA_MAX of them while the broker is away, and a failing ``on_command`` never stops the link."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge_app.link.mqtt import EXTRA_MAX, MqttLink, MqttLinkConfig
from edge_app.link.outbox import Outbox
from edge_app.protocol import device_topic, new_event_id
from tests.edge.link.test_mqtt import Observer
from tests.mosquitto import Mosquitto, wait_for

DEVICE = "unit-7"  # the device tests.edge.link.test_mqtt.Observer watches
OTHER = "unit-8"


class Bridge:
    """A paho publisher standing in for the bridge's command sender."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bridge", protocol=MQTTProtocolVersion.MQTTv5)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.connect("127.0.0.1", port, 30)
        self.client.loop_start()

    def command(self, name: str, payload: bytes, retain: bool = False, device: str = DEVICE) -> None:
        wait_for(self.client.is_connected, what="the bridge publisher to (re)connect")
        info = self.client.publish(device_topic(device, f"cmd/{name}"), payload, qos=1, retain=retain)
        info.wait_for_publish(10)
        assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Commands:
    """An ``on_command`` that records (name, payload); ``fail`` makes it raise after recording."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self._lock = threading.Lock()
        self.seen: list[tuple[str, bytes]] = []

    def __call__(self, name: str, payload: bytes) -> None:
        with self._lock:
            self.seen.append((name, payload))
        if self.fail:
            raise RuntimeError(f"handler broken by the test ({name})")

    def names(self) -> list[str]:
        with self._lock:
            return [name for name, _ in self.seen]

    def payloads(self, name: str) -> list[bytes]:
        with self._lock:
            return [payload for n, payload in self.seen if n == name]


@pytest.fixture
def bridge(broker: Mosquitto) -> Iterator[Bridge]:
    publisher = Bridge(broker.port)
    yield publisher
    publisher.close()


def start_link(links: list[MqttLink], port: int, outbox: Outbox, commands: Commands | None) -> MqttLink:
    config = MqttLinkConfig(host="127.0.0.1", port=port, backoff_min=0.05, backoff_max=0.3)
    link = MqttLink(config, DEVICE, outbox, on_command=commands)
    links.append(link)
    link.start()
    return link


def test_commands_reach_on_command_retained_ones_on_every_connect(
        broker: Mosquitto, bridge: Bridge, outbox: Outbox, links: list[MqttLink]) -> None:
    bridge.command("session_start", b'{"start":1}', retain=True)  # there before the unit connects
    commands = Commands()
    link = start_link(links, broker.port, outbox, commands)
    wait_for(lambda: commands.names() == ["session_start"], what="the retained session_start")
    assert commands.payloads("session_start") == [b'{"start":1}']
    wait_for(lambda: link.subscribed, what="the SUBACK")

    bridge.command("thresholds", b"for another unit", device=OTHER)
    bridge.command("thresholds", b'{"rules":{}}')
    wait_for(lambda: "thresholds" in commands.names(), what="the thresholds command")
    assert commands.seen == [("session_start", b'{"start":1}'), ("thresholds", b'{"rules":{}}')]  # not unit-8's

    broker.restart()  # persistence keeps the retained start; the link reconnects and subscribes again
    wait_for(lambda: commands.names().count("session_start") == 2, what="the retained start after the restart")
    assert link.connected
    assert commands.payloads("session_start") == [b'{"start":1}'] * 2
    assert commands.names().count("thresholds") == 1  # a plain command is not delivered twice


def test_a_cleared_retained_command_is_not_delivered_again(
        broker: Mosquitto, bridge: Bridge, outbox: Outbox, links: list[MqttLink]) -> None:
    observer = Observer(broker.port, "observer", persistent=True)  # sees each birth, even across the restart
    commands = Commands()
    try:
        link = start_link(links, broker.port, outbox, commands)
        wait_for(lambda: link.subscribed, what="the link to subscribe")
        bridge.command("session_start", b'{"start":1}', retain=True)
        wait_for(lambda: commands.payloads("session_start") == [b'{"start":1}'], what="the session_start")
        bridge.command("session_start", b"", retain=True)  # the bridge clears it when the session ends
        wait_for(lambda: commands.payloads("session_start") == [b'{"start":1}', b""], what="the clearing message")

        broker.restart()
        wait_for(lambda: observer.statuses().count(("online", False)) == 2 and link.subscribed,
                 what="the link to subscribe again")
        bridge.command("session_stop", b"marker")  # retained messages come before anything published later
        wait_for(lambda: "session_stop" in commands.names(), what="the marker command")
        assert commands.payloads("session_start") == [b'{"start":1}', b""]
    finally:
        observer.close()


def test_send_publishes_stats_and_pair_requests(broker: Mosquitto, outbox: Outbox, links: list[MqttLink]) -> None:
    observer = Observer(broker.port, "observer")
    try:
        link = start_link(links, broker.port, outbox, None)
        wait_for(lambda: link.connected, what="the link to connect")
        link.send("stats", b'{"fps":9.5}')
        link.send("pair", b'{"code":"ABCDEFGH"}', qos=1)
        wanted = [(device_topic(DEVICE, "stats"), b'{"fps":9.5}'),
                  (device_topic(DEVICE, "pair"), b'{"code":"ABCDEFGH"}')]
        wait_for(lambda: [(t, p) for t, p, _ in observer.messages if t in dict(wanted)] == wanted,
                 what="the stats and the pair request at the subscriber")
        assert all(not retained for t, _, retained in observer.messages if t in dict(wanted))
    finally:
        observer.close()


def test_send_while_the_broker_is_down_keeps_the_newest(broker: Mosquitto, outbox: Outbox,
                                                       links: list[MqttLink]) -> None:
    observer = Observer(broker.port, "observer", persistent=True)  # its QoS 1 queue survives the restart
    try:
        link = start_link(links, broker.port, outbox, None)
        wait_for(lambda: link.connected, what="the link to connect")
        broker.stop()
        wait_for(lambda: not link.connected, what="the link to notice the broker is gone")
        total = EXTRA_MAX + 5
        for n in range(total):
            link.send("stats", json.dumps({"n": n}).encode(), qos=1)
        event = new_event_id()
        outbox.put_raw(event, device_topic(DEVICE, "event"), b'{"durable":true}')
        link.wake()

        broker.start()
        stats_topic = device_topic(DEVICE, "stats")

        def numbers() -> list[int]:
            return [json.loads(p)["n"] for t, p, _ in list(observer.messages) if t == stats_topic]

        wait_for(lambda: numbers()[-1:] == [total - 1], what="the newest stats after the restart")
        wait_for(lambda: outbox.count() == 0, what="the event after the restart")
        assert numbers() == list(range(5, total))  # the oldest five were dropped, the rest kept in order
        assert link.connected
    finally:
        observer.close()


def test_a_failing_on_command_does_not_stop_the_link(
        broker: Mosquitto, bridge: Bridge, outbox: Outbox, links: list[MqttLink]) -> None:
    observer = Observer(broker.port, "observer")
    commands = Commands(fail=True)
    try:
        link = start_link(links, broker.port, outbox, commands)
        wait_for(lambda: link.subscribed, what="the link to subscribe")
        bridge.command("template", b"not even JSON")
        wait_for(lambda: commands.names() == ["template"], what="the first command")

        ids = [new_event_id() for _ in range(3)]
        for event_id in ids:
            outbox.put_raw(event_id, device_topic(DEVICE, "event"), json.dumps({"id": event_id}).encode())
        link.wake()
        wait_for(lambda: outbox.count() == 0, what="events acknowledged after the failing command")
        wait_for(lambda: observer.events() == ids, what="the events at the subscriber")
        bridge.command("session_stop", b"again")
        wait_for(lambda: commands.names() == ["template", "session_stop"], what="the next command")
        assert link.connected and link.acked == 3
    finally:
        observer.close()
