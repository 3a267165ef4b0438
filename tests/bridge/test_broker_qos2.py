"""What exactly-once publishing (cloud_bridge/exactly_once.py) assumes of Mosquitto, checked on a real one with
a bare MQTT 5 publisher that stops a QoS 2 exchange where the test says: the broker keeps an incoming QoS 2
message from its PUBLISH and hands it to subscribers only at the PUBREL; a PUBLISH repeated with the same
packet id on the resumed session is not stored twice; the held message survives a broker restart (with
persistence); a PUBREL repeated after the PUBCOMP delivers nothing more."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.bridge.wire import PUBCOMP, PUBREC, Wire
from tests.mosquitto import Mosquitto, wait_for

TOPIC = "invigil/v1/proctor/math-101/alerts"


class Subscriber:
    """A QoS 2 subscriber to ``TOPIC`` with a persistent session; keeps every payload it receives, in order."""

    def __init__(self, port: int) -> None:
        self.payloads: list[bytes] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="qos2-proctor",
                                  protocol=MQTTProtocolVersion.MQTTv5)
        self.client.on_connect = lambda c, *_a: c.subscribe(TOPIC, qos=2)
        self.client.on_subscribe = lambda *_a: self.subscribed.set()
        self.client.on_disconnect = lambda *_a: self.subscribed.clear()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)
        session = Properties(PacketTypes.CONNECT)
        session.SessionExpiryInterval = 3600
        self.client.connect_async("127.0.0.1", port, clean_start=False, properties=session)
        self.client.loop_start()
        wait_for(self.subscribed.is_set, what="the subscription")

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.payloads.append(bytes(message.payload))

    def settled(self, port: int, marker: bytes) -> list[bytes]:
        """What arrived before a probe published now (QoS 2, another client) arrives: a bounded wait that
        stands for "nothing more is coming"; the payloads without the probe."""
        probe = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="probe", protocol=MQTTProtocolVersion.MQTTv5)
        probe.connect("127.0.0.1", port)
        probe.loop_start()
        probe.publish(TOPIC, marker, qos=2).wait_for_publish(10)
        probe.disconnect()
        probe.loop_stop()
        wait_for(lambda: marker in self.payloads, what="the probe")
        with self.lock:
            return [p for p in self.payloads if not p.startswith(b"probe")]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_an_incoming_qos2_message_is_held_from_its_publish_and_delivered_at_its_pubrel(broker: Mosquitto) -> None:
    proctor = Subscriber(broker.port)
    wire = Wire(broker.port, "bridge-pub")
    try:
        wire.publish(1, TOPIC, b"alert-1")
        assert wire.expect(PUBREC, 1) < 0x80
        assert proctor.settled(broker.port, b"probe-1") == []  # PUBREC'd, but not handed to subscribers yet
        wire.pubrel(1)
        assert wire.expect(PUBCOMP, 1) == 0
        wait_for(lambda: b"alert-1" in proctor.payloads, what="the alert after its PUBREL")
        assert proctor.settled(broker.port, b"probe-2") == [b"alert-1"]
    finally:
        wire.drop()
        proctor.close()


def test_a_publish_repeated_with_its_packet_id_on_the_resumed_session_is_stored_once(broker: Mosquitto) -> None:
    proctor = Subscriber(broker.port)
    first = Wire(broker.port, "bridge-pub")
    first.publish(7, TOPIC, b"alert-7")
    first.expect(PUBREC, 7)
    first.drop()  # the publisher dies before its PUBREL
    again = Wire(broker.port, "bridge-pub")
    try:
        assert again.session_present
        again.publish(7, TOPIC, b"alert-7", dup=True)  # what the restarted publisher does for a `published` row
        assert again.expect(PUBREC, 7) < 0x80
        again.pubrel(7)
        assert again.expect(PUBCOMP, 7) == 0
        assert proctor.settled(broker.port, b"probe") == [b"alert-7"]
    finally:
        again.drop()
        proctor.close()


def test_a_held_qos2_message_survives_a_broker_restart_and_goes_out_once_at_its_pubrel(broker: Mosquitto) -> None:
    proctor = Subscriber(broker.port)
    wire = Wire(broker.port, "bridge-pub")
    wire.publish(9, TOPIC, b"alert-9")
    wire.expect(PUBREC, 9)
    wire.drop()
    broker.restart()  # SIGTERM: the broker saves its persistence file
    wait_for(proctor.subscribed.is_set, 20, "the proctor back")
    again = Wire(broker.port, "bridge-pub")
    try:
        assert again.session_present
        again.publish(9, TOPIC, b"alert-9", dup=True)
        again.expect(PUBREC, 9)
        again.pubrel(9)
        assert again.expect(PUBCOMP, 9) == 0
        assert proctor.settled(broker.port, b"probe") == [b"alert-9"]
    finally:
        again.drop()
        proctor.close()


def test_a_pubrel_repeated_after_its_pubcomp_delivers_nothing_more(broker: Mosquitto) -> None:
    """A publisher that died between its PUBREL and recording the PUBCOMP sends only the PUBREL again."""
    proctor = Subscriber(broker.port)
    first = Wire(broker.port, "bridge-pub")
    first.publish(3, TOPIC, b"alert-3")
    first.expect(PUBREC, 3)
    first.pubrel(3)
    first.expect(PUBCOMP, 3)
    first.drop()
    again = Wire(broker.port, "bridge-pub")
    try:
        assert again.session_present
        again.pubrel(3)
        again.expect(PUBCOMP, 3)  # Mosquitto 2.0 completes an unknown packet id (reason 0, not 0x92)
        assert proctor.settled(broker.port, b"probe") == [b"alert-3"]
    finally:
        again.drop()
        proctor.close()
