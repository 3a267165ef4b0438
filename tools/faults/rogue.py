"""A rogue unit: a registered unit's valid credentials used to take what is not its own.

It tries to join the bridge's ``$share/bridge`` group (which would hand it other units' events for the broker
to drop), to read other units' events and commands, to connect with another unit's or a bridge consumer's
client id (which would disconnect them), and to publish on another unit's event topic. Each attempt's MQTT
reason code is kept; a code below 128 is a success, which for a rogue is a failure of the broker's rights.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge_app.protocol import PREFIX, device_topic

WAIT_SECONDS = 10.0


class RogueClient:
    """One MQTT 5 connection with the rogue's user name and password, and any client id."""

    def __init__(self, port: int, username: str, password: str, client_id: str) -> None:
        self.port, self.lock = port, threading.Lock()
        self.connack: ReasonCode | None = None
        self.replies: dict[int, list[int]] = {}  # message id -> SUBACK codes, or [PUBACK code]
        self.messages = 0
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5)
        self.client.username_pw_set(username, password)
        self.client.on_connect = lambda _c, _u, _f, reason, _p: setattr(self, "connack", reason)
        self.client.on_subscribe = lambda _c, _u, mid, codes, _p: self.replies.__setitem__(
            mid, [c.value for c in codes])
        self.client.on_publish = lambda _c, _u, mid, code, _p: self.replies.__setitem__(mid, [code.value])
        self.client.on_message = self._on_message

    def _on_message(self, _client: mqtt.Client, _userdata: Any, _message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages += 1

    def _wait(self, done: Any, what: str) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while not done():
            if time.monotonic() > deadline:
                raise RuntimeError(f"no {what} from the broker within {WAIT_SECONDS:g} s")
            time.sleep(0.01)

    def connect(self) -> int:
        """CONNECT with a persistent session (it would queue what it is given); the CONNACK's reason code."""
        session = Properties(PacketTypes.CONNECT)
        session.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", self.port, 30, clean_start=False, properties=session)
        self.client.loop_start()
        self._wait(lambda: self.connack is not None, "CONNACK")
        assert self.connack is not None
        return int(self.connack.value)

    def subscribe(self, topic: str) -> int:
        _, mid = self.client.subscribe(topic, qos=1)
        assert mid is not None
        self._wait(lambda: mid in self.replies, f"SUBACK for {topic}")
        return self.replies[mid][0]

    def publish(self, topic: str, payload: bytes) -> int:
        mid = self.client.publish(topic, payload, qos=1).mid
        self._wait(lambda: mid in self.replies, f"PUBACK for {topic}")
        return self.replies[mid][0]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Rogue:
    """The attempts of unit ``username`` against ``victim`` and the bridge's consumer ``bridge_client``."""

    def __init__(self, port: int, username: str, password: str, victim: str, bridge_client: str) -> None:
        self.port, self.username, self.password = port, username, password
        self.victim, self.bridge_client = victim, bridge_client
        self.outcomes: dict[str, int] = {}  # attempt -> MQTT reason code
        self.own: RogueClient | None = None

    def subscribe_all(self) -> None:
        """Connected under its own client id, subscribe where only the bridge or the victim may."""
        self.own = RogueClient(self.port, self.username, self.password, self.username)
        self.outcomes["connect as itself"] = self.own.connect()
        for what, topic in (("join $share/bridge", f"$share/bridge/{PREFIX}/dev/+/event"),
                            ("join $share/bridge (all)", f"$share/bridge/{PREFIX}/#"),
                            ("read every unit's events", f"{PREFIX}/dev/+/event"),
                            ("read the victim's commands", device_topic(self.victim, "cmd/#"))):
            self.outcomes[what] = self.own.subscribe(topic)
        self.outcomes["publish as the victim"] = self.own.publish(device_topic(self.victim, "event"), b"{}")

    def steal_ids(self) -> None:
        """Connect with the victim's client id, then with a bridge consumer's."""
        for what, client_id in (("take the victim's client id", self.victim),
                                ("take a bridge consumer's client id", self.bridge_client)):
            thief = RogueClient(self.port, self.username, self.password, client_id)
            try:
                self.outcomes[what] = thief.connect()
            finally:
                thief.close()

    @property
    def received(self) -> int:
        return self.own.messages if self.own is not None else 0

    def granted(self) -> list[str]:
        """The attempts the broker allowed (the rogue's own connection aside)."""
        return [what for what, code in self.outcomes.items() if code < 128 and what != "connect as itself"]

    def close(self) -> None:
        if self.own is not None:
            self.own.close()
