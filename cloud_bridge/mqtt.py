"""The bridge's MQTT side: consumers on a shared subscription, and one publisher.

Each consumer is a paho client with a stable client id and a persistent session (clean start off, a
session expiry), so the broker queues device messages while the bridge restarts. The consumers subscribe to
``$share/bridge/invigil/v1/dev/+/{event,pair,stats}``: the broker hands each message to one of them, so
several workers (threads here, or processes on several hosts) share the load. Retained status messages are
not delivered to shared subscriptions, so consumer 0 also holds a plain ``invigil/v1/dev/+/status``
subscription.

A consumer handles its messages in batches on a thread of its own: a batch closes at ``batch_max`` messages
or ``batch_wait_ms`` after its first one, its events are stored in one transaction, and each message is
acknowledged (PUBACK, manual acknowledgement) only once that has committed. Until then the broker counts it
in flight (the consumer's receive maximum: two batches, so the next one arrives while this one commits) and
sends it again to a bridge that dies or reconnects; ingest is idempotent, so a message stored just before a
crash is a ``duplicate`` the second time. A handler never raises for a bad payload (it dead-letters it);
a message it could not handle because the database is away stays unacknowledged and is retried on its own
with backoff on a timer, while the rest of its batch is acknowledged.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from cloud_bridge.config import MqttConfig
from cloud_bridge.dynsec import SHARE_GROUP  # reserved to the bridge account by the broker's rights
from cloud_bridge.exactly_once import ExactlyOnce, PacketIdClient
from cloud_bridge.store import Store
from edge_app.protocol import PREFIX
from edge_app.protocol.transport import new_client

log = logging.getLogger(__name__)
SHARED_LEAVES = ("event", "pair", "stats")
RETRY_MIN, RETRY_MAX = 0.5, 30.0  # seconds between retries of a message whose handler could not finish
STOP_SECONDS = 30.0  # a stopping consumer waits this long for the batch in hand to be stored and acknowledged
Handler = Callable[[str, bytes], object]
# a batch of (topic, payload) -> an outcome per message; an Exception for one the handler could not handle
BatchHandler = Callable[[list[tuple[str, bytes]]], Sequence[object]]


def subscriptions(index: int) -> list[str]:
    shared = [f"$share/{SHARE_GROUP}/{PREFIX}/dev/+/{leaf}" for leaf in SHARED_LEAVES]
    return shared + ([f"{PREFIX}/dev/+/status"] if index == 0 else [])


def receive_maximum(config: MqttConfig) -> int:
    """Messages the broker may send a consumer before it acknowledges one: two batches (at least
    Mosquitto's default of 20)."""
    return min(65_535, max(20, 2 * config.batch_max))


def _connect(client: mqtt.Client, config: MqttConfig, clean_start: bool, receive: int | None = None) -> None:
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 0 if clean_start else config.session_expiry
    if receive is not None:
        properties.ReceiveMaximum = receive
    client.reconnect_delay_set(1, 10)
    client.connect_async(config.host, config.port, config.keepalive, clean_start=clean_start, properties=properties)
    client.loop_start()


class Delivery(NamedTuple):
    """A message as received: its packet id is valid only on the connection (counted) that delivered it."""

    connection: int
    mid: int
    qos: int
    topic: str
    payload: bytes


class Consumer:
    """Consumer ``index`` of the bridge: hands its messages to ``batch(messages)`` in batches, or one by one to
    ``handler(topic, payload)`` (which also handles again what a batch could not)."""

    def __init__(self, config: MqttConfig, index: int, handler: Handler, batch: BatchHandler | None = None) -> None:
        self.config, self.index, self.handler, self.batch = config, index, handler, batch
        self.client_id = f"{config.client_prefix}-{index}"
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # the broker accepted every filter: messages published now arrive
        self.handled = 0  # messages acknowledged
        self.batches = 0  # batches handled
        self.retrying = 0  # messages waiting for a retry (the database was away)
        self.client = new_client(config, self.client_id)
        self.client.manual_ack_set(True)
        self._connection = 0  # counts connects: a packet id is only valid on the connection that delivered it
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[Delivery | None] = queue.SimpleQueue()
        self._worker = threading.Thread(target=self._work, name=f"{self.client_id}-batches", daemon=True)
        self.client.on_connect, self.client.on_message, self.client.on_disconnect = (
            self._on_connect, self._on_message, self._on_disconnect)
        self.client.on_subscribe = self._on_subscribe

    def start(self) -> None:
        self._worker.start()
        _connect(self.client, self.config, clean_start=False, receive=receive_maximum(self.config))

    def stop(self) -> None:
        """Finish the batch in hand (stored and acknowledged), leave the rest to the broker, disconnect."""
        self._stopped.set()
        self._queue.put(None)
        if self._worker.ident is not None:
            self._worker.join(STOP_SECONDS)
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
        else:
            self.subscribed.set()

    def _on_disconnect(self, *_args: Any) -> None:
        self.connected.clear()
        self.subscribed.clear()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._queue.put(Delivery(self._connection, message.mid, message.qos, message.topic, bytes(message.payload)))

    def _work(self) -> None:
        """The consumer's batch thread: collect a batch, handle it, acknowledge it; until stopped."""
        wait = self.config.batch_wait_ms / 1000
        while True:
            first = self._queue.get()
            if first is None or self._stopped.is_set():
                return  # what is not handled stays unacknowledged: the broker sends it again
            batch, deadline = [first], time.monotonic() + wait
            while len(batch) < self.config.batch_max:
                remaining = deadline - time.monotonic()
                try:
                    more = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    return
                batch.append(more)
            if self._stopped.is_set():
                return
            try:
                self._handle(batch)
            except Exception:  # never the end of the consumer: each message is tried again on its own
                log.exception("bridge consumer %s: a batch of %d failed", self.client_id, len(batch))
                for delivery in batch:
                    self._retry(delivery, 0, "a failed batch")

    def _handle(self, batch: list[Delivery]) -> None:
        if self.batch is None:
            for delivery in batch:
                self._attempt(delivery, 0)
            return
        try:
            results = list(self.batch([(delivery.topic, delivery.payload) for delivery in batch]))
        except Exception as exc:  # the database is away: keep the messages, try each again later
            results = [exc] * len(batch)
        if len(results) != len(batch):
            raise RuntimeError(f"the batch handler gave {len(results)} outcomes for {len(batch)} messages")
        self.batches += 1
        for delivery, result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                self._retry(delivery, 0, type(result).__name__)
            else:
                self._ack(delivery)

    def _attempt(self, delivery: Delivery, attempt: int) -> None:
        if attempt:
            with self._lock:
                self.retrying -= 1
        if self._stopped.is_set():
            return  # unacknowledged: the broker sends it again when this consumer's session resumes
        try:
            self.handler(delivery.topic, delivery.payload)
        except Exception as exc:  # the database is away: keep the message, try again later
            self._retry(delivery, attempt, type(exc).__name__)
            return
        self._ack(delivery)

    def _retry(self, delivery: Delivery, attempt: int, why: str) -> None:
        delay = min(RETRY_MAX, RETRY_MIN * 2 ** min(attempt, 10))
        log.warning("bridge consumer %s: %s on %s; retrying in %.1f s", self.client_id, why, delivery.topic, delay)
        with self._lock:
            self.retrying += 1
        timer = threading.Timer(delay, self._attempt, (delivery, attempt + 1))
        timer.daemon = True
        timer.start()

    def _ack(self, delivery: Delivery) -> None:
        if delivery.connection == self._connection:  # else the broker has sent it again on the new connection
            self.client.ack(delivery.mid, delivery.qos)
        with self._lock:
            self.handled += 1


class Publication:
    """What :meth:`Publisher.publish` returns for a QoS 1 message: paho's message info, and ``refused``, the
    reason code of a PUBACK that refused the message (MQTT 5, 0x80 and up: not authorized, quota exceeded),
    which paho counts as published all the same."""

    __slots__ = ("info", "refused")

    def __init__(self, info: mqtt.MQTTMessageInfo) -> None:
        self.info = info
        self.refused: ReasonCode | None = None

    @property
    def mid(self) -> int:
        return self.info.mid

    @property
    def rc(self) -> int:
        return int(self.info.rc)

    def is_published(self) -> bool:
        return self.info.is_published()


class Publisher:
    """Publishes commands (QoS 1) and proctor alerts (QoS 2, exactly once through :meth:`exactly_once`) on a
    persistent session; messages wait in paho's queue while disconnected."""

    def __init__(self, config: MqttConfig) -> None:
        self.config = config
        self.connected = threading.Event()
        self.client_id = f"{config.client_prefix}-pub"  # names the session its QoS 2 outbox rows belong to
        client = new_client(config, self.client_id, PacketIdClient)
        assert isinstance(client, PacketIdClient)
        self.client = client
        self.client.max_queued_messages_set(100_000)
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.on_disconnect = lambda *_a: self.connected.clear()
        self._exactly_once: ExactlyOnce | None = None
        self._awaiting: dict[int, Publication] = {}  # QoS 1 messages by packet id, until their PUBACK
        self._lock = threading.Lock()

    def exactly_once(self, store: Store) -> ExactlyOnce:
        """This publisher's QoS 2 outbox rows in ``store`` (one per publisher; made before :meth:`start`)."""
        if self._exactly_once is None:
            if self.config.session_expiry == 0:
                log.warning("bridge publisher: session_expiry 0 ends its session at each disconnect: proctor "
                            "alerts caught by one may arrive twice")
            self._exactly_once = ExactlyOnce(store, self.client, self.client_id)
        return self._exactly_once

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
        if self._exactly_once is not None:
            try:  # before paho sends its queue again, right after this callback
                self._exactly_once.resume(bool(_flags.session_present))
            except Exception:  # the store is away: paho's own queue goes out (what this process published)
                log.exception("bridge publisher: unfinished QoS 2 messages not taken up from the store")
        self.connected.set()

    def _on_publish(self, _client: mqtt.Client, _userdata: Any, mid: int, reason: ReasonCode,
                    _properties: Properties) -> None:
        with self._lock:
            publication = self._awaiting.pop(mid, None)
        if publication is not None:
            if reason.is_failure:
                publication.refused = reason
                log.warning("bridge publisher: the broker refused message %d at its PUBACK (%s)", mid, reason)
        elif self._exactly_once is not None:
            self._exactly_once.completed(mid)

    def publish(self, topic: str, payload: bytes, qos: int = 1,
                retain: bool = False) -> mqtt.MQTTMessageInfo | Publication:
        """Queue a message; the returned info's ``is_published()`` turns true on the broker's PUBACK (QoS 2: its
        PUBCOMP; the outbox sends its QoS 2 rows through :meth:`exactly_once` instead). A QoS 1 message's is a
        :class:`Publication`, whose ``refused`` says when that PUBACK refused it."""
        if qos != 1:
            return self.client.publish(topic, payload, qos=qos, retain=retain)
        mid = self.client.reserve()  # known before the PUBLISH leaves, so its PUBACK cannot come first
        try:
            publication = Publication(mqtt.MQTTMessageInfo(mid))
            with self._lock:
                self._awaiting[mid] = publication
            publication.info = self.client.publish_as(mid, topic, payload, retain, qos=1)
            if publication.info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:  # not queued: no PUBACK will come
                with self._lock:
                    self._awaiting.pop(mid, None)
            return publication
        finally:
            self.client.release([mid])  # paho holds it from here until the PUBACK
