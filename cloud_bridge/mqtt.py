"""The bridge's MQTT side: consumers on a shared subscription, and one publisher.

Each consumer is a paho client with a stable client id and a persistent session (clean start off, a
session expiry), so the broker queues device messages while the bridge restarts. The consumers subscribe to
``$share/bridge/invigil/v1/dev/+/{event,pair,stats}``: the broker hands each message to one of them, so
several workers (threads here, or processes on several hosts) share the load. Retained status messages are
not delivered to shared subscriptions, so consumer 0 also holds a plain ``invigil/v1/dev/+/status``
subscription. A message is acknowledged only once its handler has returned: a handler never raises for a
bad payload (it dead-letters it), and when it raises because the database is away, the message stays
unacknowledged and is retried with backoff on a timer; meanwhile the broker stops sending once the
consumer's in-flight window is full, and a bridge that dies gets the message again when it reconnects.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from cloud_bridge.config import MqttConfig
from cloud_bridge.dynsec import SHARE_GROUP  # reserved to the bridge account by the broker's rights
from edge_app.protocol import PREFIX
from edge_app.protocol.transport import new_client

log = logging.getLogger(__name__)
SHARED_LEAVES = ("event", "pair", "stats")
RETRY_MIN, RETRY_MAX = 0.5, 30.0  # seconds between retries of a message whose handler could not finish
Handler = Callable[[str, bytes], object]


def subscriptions(index: int) -> list[str]:
    shared = [f"$share/{SHARE_GROUP}/{PREFIX}/dev/+/{leaf}" for leaf in SHARED_LEAVES]
    return shared + ([f"{PREFIX}/dev/+/status"] if index == 0 else [])


def _connect(client: mqtt.Client, config: MqttConfig, clean_start: bool) -> None:
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 0 if clean_start else config.session_expiry
    client.reconnect_delay_set(1, 10)
    client.connect_async(config.host, config.port, config.keepalive, clean_start=clean_start, properties=properties)
    client.loop_start()


class Consumer:
    """Consumer ``index`` of the bridge: hands every message to ``handler(topic, payload)``."""

    def __init__(self, config: MqttConfig, index: int, handler: Handler) -> None:
        self.config, self.index, self.handler = config, index, handler
        self.client_id = f"{config.client_prefix}-{index}"
        self.connected = threading.Event()
        self.handled = 0
        self.client = new_client(config, self.client_id)
        self.client.manual_ack_set(True)
        self.retrying = 0  # messages waiting for a retry (the database was away)
        self._connection = 0  # counts connects: a packet id is only valid on the connection that delivered it
        self._stopped = threading.Event()
        self.client.on_connect, self.client.on_message, self.client.on_disconnect = (
            self._on_connect, self._on_message, self._on_disconnect)
        self.client.on_subscribe = self._on_subscribe

    def start(self) -> None:
        _connect(self.client, self.config, clean_start=False)

    def stop(self) -> None:
        self._stopped.set()
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode,
                    _properties: Properties | None) -> None:
        if reason.is_failure:
            log.warning("bridge consumer %s: broker refused the connection: %s", self.client_id, reason)
            return
        client.subscribe([(topic, 1) for topic in subscriptions(self.index)])
        self._connection += 1
        self.connected.set()
        log.info("bridge consumer %s: connected", self.client_id)

    def _on_subscribe(self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: list[ReasonCode],
                      _properties: Properties | None) -> None:
        refused = [f"{topic} ({reason})" for topic, reason in zip(subscriptions(self.index), reasons, strict=False)
                   if reason.is_failure]
        if refused:  # e.g. an account without the bridge role: nothing arrives on these filters
            log.error("bridge consumer %s: the broker refused %s", self.client_id, ", ".join(refused))

    def _on_disconnect(self, *_args: Any) -> None:
        self.connected.clear()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._attempt((self._connection, message.mid), message.qos, message.topic, bytes(message.payload), 0)

    def _attempt(self, mid: tuple[int, int], qos: int, topic: str, payload: bytes, attempt: int) -> None:
        if attempt:
            self.retrying -= 1
        if self._stopped.is_set():
            return  # unacknowledged: the broker sends it again when this consumer's session resumes
        try:
            self.handler(topic, payload)
        except Exception as exc:  # the database is away: keep the message, try again later
            delay = min(RETRY_MAX, RETRY_MIN * 2 ** min(attempt, 10))
            log.warning("bridge consumer %s: %s on %s; retrying in %.1f s", self.client_id, type(exc).__name__,
                        topic, delay)
            self.retrying += 1
            timer = threading.Timer(delay, self._attempt, (mid, qos, topic, payload, attempt + 1))
            timer.daemon = True
            timer.start()
            return
        connection, packet_id = mid
        if connection == self._connection:  # else the broker has sent it again on the new connection
            self.client.ack(packet_id, qos)
        self.handled += 1


class Publisher:
    """Publishes commands and proctor alerts; QoS 1 messages wait in paho's queue while disconnected."""

    def __init__(self, config: MqttConfig) -> None:
        self.config = config
        self.connected = threading.Event()
        self.client = new_client(config, f"{config.client_prefix}-pub")
        self.client.max_queued_messages_set(100_000)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_a: self.connected.clear()

    def start(self) -> None:
        _connect(self.client, self.config, clean_start=False)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode,
                    _properties: Properties | None) -> None:
        if reason.is_failure:  # e.g. a wrong password: not connected, whatever the callback's name says
            log.warning("bridge publisher: broker refused the connection: %s", reason)
            return
        self.connected.set()

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> mqtt.MQTTMessageInfo:
        """Queue a message; the returned info's ``is_published()`` turns true on the broker's PUBACK."""
        return self.client.publish(topic, payload, qos=qos, retain=retain)
