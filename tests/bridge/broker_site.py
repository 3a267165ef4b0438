"""A real Mosquitto run with the bridge's generated configuration, its accounts, and MQTT 5 test clients.

Ordering makes "never delivered" checkable without waiting: Mosquitto routes a PUBLISH before it sends the
PUBACK and delivers to each subscriber in order, so once a later message has arrived an earlier one that
was routed to the same subscriber would already be there.
"""

from __future__ import annotations

import getpass
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from cloud_bridge.broker import BrokerUser, Role, TlsFiles, hash_password, new_password, write_broker_files
from tests.mosquitto import Mosquitto, free_port, wait_for

GRANTED_QOS1, NO_SUBSCRIBERS, NOT_AUTHORIZED = 1, 16, 135  # SUBACK / PUBACK / CONNACK reason codes (MQTT 5)
DEV = "invigil/v1/dev"
BRIDGE_PREFIX = "invigil-bridge"  # the bridge's default client_prefix


class Peer:
    """A paho MQTT 5 client that records the CONNACK, SUBACK, PUBACK and DISCONNECT reasons and its messages."""

    def __init__(self, port: int, name: str, password: str | None, client_id: str | None = None,
                 tls: TlsFiles | None = None, cert: tuple[Path, Path] | None = None) -> None:
        self.port, self.name, self.lock = port, name, threading.Lock()
        self.connack: ReasonCode | None = None
        self.disconnects: list[ReasonCode] = []
        self.subacks: dict[int, list[ReasonCode]] = {}
        self.pubacks: dict[int, ReasonCode] = {}
        self.messages: list[tuple[str, bytes, bool]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or name,
                                  protocol=MQTTProtocolVersion.MQTTv5)
        if password is not None:
            self.client.username_pw_set(name, password)
        if tls is not None:
            self.client.tls_set(ca_certs=str(tls.ca_file), certfile=str(cert[0]) if cert else None,
                                keyfile=str(cert[1]) if cert else None)
        self.client.on_connect = lambda _c, _u, _f, reason, _p: setattr(self, "connack", reason)
        self.client.on_disconnect = lambda _c, _u, _f, reason, _p: self.disconnects.append(reason)
        self.client.on_subscribe = lambda _c, _u, mid, reasons, _p: self.subacks.__setitem__(mid, reasons)
        self.client.on_publish = lambda _c, _u, mid, reason, _p: self.pubacks.__setitem__(mid, reason)
        self.client.on_message = self._on_message

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))

    def connect(self, clean_start: bool = True) -> ReasonCode:
        """CONNECT and wait for the CONNACK; an accepted client keeps running in paho's thread. Without
        ``clean_start`` the session outlives the connection by an hour (as a bridge consumer's)."""
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 0 if clean_start else 3600
        self.client.connect("127.0.0.1", self.port, 30, clean_start=clean_start, properties=properties)

        def answered() -> bool:
            self.client.loop(0.05)
            return self.connack is not None

        wait_for(answered, what=f"{self.name}'s CONNACK")
        assert self.connack is not None
        if not self.connack.is_failure:
            self.client.loop_start()
        return self.connack

    def subscribe(self, *filters: str) -> list[int]:
        _, mid = self.client.subscribe([(f, 1) for f in filters])
        assert mid is not None
        wait_for(lambda: mid in self.subacks, what=f"{self.name}'s SUBACK")
        return [reason.value for reason in self.subacks[mid]]

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> int:
        """QoS 1 PUBLISH; the PUBACK's reason code."""
        mid = self.client.publish(topic, payload, qos=1, retain=retain).mid
        wait_for(lambda: mid in self.pubacks, what=f"the PUBACK of {self.name}'s publish to {topic}")
        return self.pubacks[mid].value

    def topics(self) -> list[str]:
        with self.lock:
            return [topic for topic, _, _ in self.messages]

    def payloads(self, topic: str) -> list[bytes]:
        with self.lock:
            return [payload for t, payload, _ in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def plain_mqtt_is_dropped(port: int, password: str) -> bool:
    """A plain-TCP MQTT CONNECT to a TLS port: True when the broker drops it without any CONNACK."""
    connacks: list[object] = []
    plain = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="plain", protocol=MQTTProtocolVersion.MQTTv5)
    plain.username_pw_set("bridge", password)
    plain.on_connect = lambda _c, _u, _f, reason, _p: connacks.append(reason)
    plain.connect("127.0.0.1", port, 30)  # TCP only: the broker expects a TLS handshake
    wait_for(lambda: plain.loop(0.05) != MQTTErrorCode.MQTT_ERR_SUCCESS, what="the broker to drop plain MQTT")
    return connacks == []


@dataclass
class Site:
    """A broker run with generated files, its users and their passwords, and the test's clients."""

    folder: Path
    tls: TlsFiles | None = None
    port: int = field(default_factory=free_port)
    users: list[BrokerUser] = field(default_factory=list)
    passwords: dict[str, str] = field(default_factory=dict)
    peers: list[Peer] = field(default_factory=list)
    broker: Mosquitto = field(init=False)

    def add(self, name: str, role: Role) -> None:
        self.passwords[name] = new_password()
        self.users.append(BrokerUser(name, hash_password(self.passwords[name]), role))

    def write(self) -> None:
        write_broker_files(self.folder, self.users, "127.0.0.1", self.port, tls=self.tls, user=getpass.getuser(),
                           bridge_client_prefixes=[BRIDGE_PREFIX])

    def start(self) -> None:
        self.write()
        self.broker = Mosquitto(self.folder, conf_text=(self.folder / "mosquitto.conf").read_text())
        self.broker.start()

    def peer(self, name: str, password: str | None = None, client_id: str | None = None,
             cert: tuple[Path, Path] | None = None) -> Peer:
        peer = Peer(self.port, name, self.passwords.get(name) if password is None else password, client_id,
                    self.tls, cert)
        self.peers.append(peer)
        return peer

    def connected(self, name: str, client_id: str | None = None, clean_start: bool = True) -> Peer:
        peer = self.peer(name, client_id=client_id)
        assert peer.connect(clean_start).value == 0, f"{name} refused"
        return peer

    def close(self) -> None:
        for peer in self.peers:
            peer.close()
        self.broker.kill()


def running_site(folder: Path, tls: TlsFiles | None = None) -> Iterator[Site]:
    """A fixture body: units a and b, the bridge and a proctor on a started broker; everything closed after."""
    site = Site(folder, tls)
    for name, role in (("unit-a", "device"), ("unit-b", "device"), ("bridge", "bridge"), ("proctor", "proctor")):
        site.add(name, role)  # type: ignore[arg-type]
    site.start()
    yield site
    site.close()
