"""The MQTT link over TLS with per-device credentials, against a real Mosquitto run with the bridge's
generated configuration (cloud_bridge.broker) and a throwaway CA (tests/certs.py)."""

from __future__ import annotations

import getpass
import json
import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from cloud_bridge.broker import BrokerUser, TlsFiles, hash_password, new_password, write_broker_files
from edge_app.link.mqtt import MqttLink, MqttLinkConfig
from edge_app.link.outbox import Outbox
from edge_app.protocol import device_topic, new_event_id
from tests.certs import make_authority, make_tls
from tests.mosquitto import LinkCutter, Mosquitto, free_port, wait_for

DEVICE = "unit-7"
EVENTS = device_topic(DEVICE, "event")
STATUS = device_topic(DEVICE, "status")


@dataclass
class TlsBroker:
    broker: Mosquitto
    tls: TlsFiles
    password_file: Path  # the device's password, one line, as on the unit
    bridge_password: str


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[TlsBroker]:
    tls = make_tls(tmp_path / "certs")
    device_password, bridge_password = new_password(), new_password()
    users = [BrokerUser(DEVICE, hash_password(device_password), "device"),
             BrokerUser("bridge", hash_password(bridge_password), "bridge")]
    files = write_broker_files(tmp_path / "broker", users, "127.0.0.1", free_port(), tls=tls, user=getpass.getuser())
    password_file = tmp_path / "device" / "mqtt-password"
    password_file.parent.mkdir()
    password_file.write_text(device_password + "\n")
    broker = Mosquitto(tmp_path / "broker", conf_text=files.conf.read_text())
    broker.start()
    yield TlsBroker(broker, tls, password_file, bridge_password)
    broker.kill()


class Subscriber:
    """The bridge side: a paho client over TLS, logged in as the bridge, reading the device's topics."""

    def __init__(self, port: int, ca_file: Path, password: str) -> None:
        self._lock = threading.Lock()
        self.messages: list[tuple[str, bytes]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bridge", protocol=MQTTProtocolVersion.MQTTv5)
        self.client.username_pw_set("bridge", password)
        self.client.tls_set(ca_certs=str(ca_file))
        subscribed = threading.Event()
        self.client.on_connect = lambda c, *_: c.subscribe(device_topic(DEVICE, "#"), qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, 30)
        self.client.loop_start()
        wait_for(subscribed.is_set, what="the bridge subscriber over TLS")

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload)))

    def events(self) -> list[str]:
        with self._lock:
            return [json.loads(p)["id"] for t, p in self.messages if t == EVENTS]

    def statuses(self) -> list[str]:
        with self._lock:
            return [json.loads(p)["state"] for t, p in self.messages if t == STATUS]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def put_events(outbox: Outbox, count: int) -> list[str]:
    ids = [new_event_id() for _ in range(count)]
    for event_id in ids:
        outbox.put_raw(event_id, EVENTS, json.dumps({"id": event_id}).encode())
    return ids


def link_config(port: int, ca_file: Path, password_file: Path) -> MqttLinkConfig:
    return MqttLinkConfig.model_validate({"host": "127.0.0.1", "port": port, "tls": True, "ca_file": ca_file,
                                          "username": DEVICE, "password_file": password_file,
                                          "backoff_min": 0.05, "backoff_max": 0.3})


def test_the_link_delivers_over_tls_with_its_password(tls_broker: TlsBroker, outbox: Outbox) -> None:
    subscriber = Subscriber(tls_broker.broker.port, tls_broker.tls.ca_file, tls_broker.bridge_password)
    link = MqttLink(link_config(tls_broker.broker.port, tls_broker.tls.ca_file, tls_broker.password_file), DEVICE,
                    outbox)
    try:
        ids = put_events(outbox, 3)
        link.start()
        link.wake()
        wait_for(lambda: outbox.count() == 0, what="the outbox to empty over TLS")
        wait_for(lambda: subscriber.events() == ids, what="the events at the bridge subscriber")
        assert link.connected and link.acked == 3
        assert "online" in subscriber.statuses()  # the retained birth passed the ACL too
        assert link.stop(5)
        wait_for(lambda: subscriber.statuses()[-1:] == ["offline"], what="offline at the subscriber")
    finally:
        link.stop(5)
        subscriber.close()


def test_the_broker_takes_tls_1_2_and_drops_plain_mqtt(tls_broker: TlsBroker) -> None:
    context = ssl.create_default_context(cafile=str(tls_broker.tls.ca_file))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with context.wrap_socket(socket.create_connection(("127.0.0.1", tls_broker.broker.port), 5),
                             server_hostname="127.0.0.1") as sock:
        assert sock.version() == "TLSv1.2"  # the certificate verifies for 127.0.0.1, and TLS 1.2 is taken

    connacks: list[object] = []
    plain = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="plain", protocol=MQTTProtocolVersion.MQTTv5)
    plain.username_pw_set("bridge", tls_broker.bridge_password)
    plain.on_connect = lambda _c, _u, _f, reason, _p: connacks.append(reason)
    plain.connect("127.0.0.1", tls_broker.broker.port, 30)  # TCP only: the broker expects a TLS handshake
    wait_for(lambda: plain.loop(0.05) != MQTTErrorCode.MQTT_ERR_SUCCESS, what="the broker to drop plain MQTT")
    assert connacks == []


def test_with_the_wrong_ca_the_link_keeps_retrying_without_raising(
        tls_broker: TlsBroker, outbox: Outbox, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    stranger = make_authority(tmp_path / "other-ca", "Some other CA")
    cutter = LinkCutter(tls_broker.broker.port)  # counts the link's connection attempts
    link = MqttLink(link_config(cutter.port, stranger.cert_file, tls_broker.password_file), DEVICE, outbox)
    try:
        with caplog.at_level(logging.WARNING, logger="edge_app.link.mqtt"):
            put_events(outbox, 2)
            link.start()
            wait_for(lambda: cutter.accepted >= 3, what="three connection attempts")
        assert not link.connected and link.sent == 0 and outbox.count() == 2
        assert "certificate verify failed" in caplog.text
        assert link.stop(5)
    finally:
        link.stop(5)
        cutter.close()
