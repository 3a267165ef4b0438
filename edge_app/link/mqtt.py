"""The device's MQTT link: publishes the outbox with QoS 1; the bridge's receipts delete what it has stored.

One worker thread owns everything network: it connects (MQTT 5, or 3.1.1 for NATS's gateway: edge_app.link.connect;
a persistent session so the bridge's commands wait at the broker while the unit is away, a retained ``offline`` last
will, delayed by ``will_delay`` in MQTT 5), announces a retained ``online`` birth status, publishes pending outbox
rows oldest first with at most ``inflight_max`` unacknowledged. With ``receipts`` (edge_app.link.receipts, how a
unit runs) a row leaves the outbox only when the bridge's signed ``cmd/receipt`` says it is stored: a PUBACK moves
the link on to the next rows, and everything unreceipted goes out again after each reconnect and whenever receipts
stop moving on for ``receipt_timeout``. Without receipts (a link with no bridge behind it) a row is deleted on its
PUBACK. A lost connection loses nothing: the rows are still in the outbox and go out again after the reconnect (the
bridge drops duplicates by event id). Each connection uses a fresh paho client, so no stale in-flight message is
resent from a previous connection. Reconnects back off exponentially with jitter between ``backoff_min`` and
``backoff_max``; every wait is bounded. A broker that refuses this unit's credentials (edge_app.link.connack: a
revoked unit, a wrong password) refuses every retry: those waits double from ``backoff_max`` up to
``refused_backoff_max``, the refusal is logged once per change, and ``on_refused`` hears the broker's reason
(and None once a later connection is accepted).

Besides events, the link carries the unit's other traffic on the same connection: ``send()`` publishes a
heartbeat or pairing request when connected (not durable), and signed commands from the bridge on
``cmd/<name>`` are handed to ``on_command`` (subscribed on every connect).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge_app.link.config import MqttLinkConfig
from edge_app.link.connack import Refusal, RefusalState
from edge_app.link.connect import connect, disconnect, link_client
from edge_app.link.receipts import Receipts
from edge_app.protocol import device_topic
from edge_app.protocol.transport import status_payload

log = logging.getLogger(__name__)

CONNACK_SECONDS = 10.0  # how long a connection attempt may wait for the broker's CONNACK
LOOP_SECONDS = 0.1  # network wait per turn: also how soon wake() and stop() are noticed
POLL_SECONDS = 5.0  # re-read the outbox this often even without wake() (rows written by another process)
EXTRA_MAX = 32  # stats and pair requests waiting for a connection, at most


class PendingEvents(Protocol):
    """What the link needs of the outbox (edge_app.link.outbox.Outbox)."""

    def unreceipted(self, after_seq: int = 0, limit: int = 100) -> list[tuple[int, str, str, bytes]]: ...

    def ack(self, event_id: str) -> None: ...


def backoff_delay(attempt: int, low: float, high: float) -> float:
    """Longest wait before reconnect attempt ``attempt`` (0-based): ``low`` doubled each time, capped at ``high``."""
    return min(high, low * 2.0 ** min(attempt, 40))


def _ok(reason: ReasonCode | int) -> bool:
    return not reason.is_failure if isinstance(reason, ReasonCode) else reason == 0


class MqttLink:
    """Publishes the outbox to the broker from a background thread until stopped."""

    def __init__(self, config: MqttLinkConfig, device_id: str, outbox: PendingEvents,
                 clock: Callable[[], float] = time.monotonic,
                 on_command: Callable[[str, bytes], None] | None = None, receipts: Receipts | None = None,
                 on_refused: Callable[[str | None], None] | None = None) -> None:
        self.config, self.device_id, self._outbox, self._clock = config, device_id, outbox, clock
        self.on_command = on_command  # (name, payload) for each message on cmd/<name>, on the link's thread
        self.receipts = receipts  # cmd/receipt goes here (on the link's thread), never to on_command
        # on_refused: the broker's reason when it refuses the credentials, None once accepted again (link's thread)
        self.refusals = RefusalState(device_id, max(config.backoff_max, config.refused_backoff_max), on_refused)
        self.command_topic = device_topic(device_id, "cmd/+")
        self._extra: deque[tuple[str, bytes, int]] = deque(maxlen=EXTRA_MAX)  # stats and pair requests
        self.status_topic = device_topic(device_id, "status")  # also checks the device id
        self._stop, self._wake = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self._stop_deadline = 0.0
        self._connected = self._dirty = self._subscribed = False
        self._refused: Refusal | None = None  # this connection attempt's refusal
        self._sent = self._acked = 0
        self._inflight: dict[int, str] = {}  # paho message id -> event id, awaiting PUBACK
        self._cursor = 0  # the highest sequence number handed to the broker on this connection (or this round)
        self._offline_mid: int | None = None
        self._offline_acked = False

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def refused(self) -> str | None:
        """The broker's reason while it refuses this unit's credentials (until a connection is accepted)."""
        return self.refusals.credentials

    @property
    def subscribed(self) -> bool:
        """Connected and the broker confirmed the cmd/+ subscription: commands published now reach on_command."""
        return self._connected and self._subscribed

    @property
    def sent(self) -> int:
        """Event publishes handed to the broker (a resend after a reconnect counts again)."""
        return self._sent

    @property
    def acked(self) -> int:
        """Events the broker acknowledged (PUBACK; without receipts, also deleted from the outbox)."""
        return self._acked

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("MqttLink.start() called twice")
        self._thread = threading.Thread(target=self._run, name=f"mqtt-link-{self.device_id}", daemon=True)
        self._thread.start()

    def send(self, leaf: str, payload: bytes, qos: int = 0) -> None:
        """Publish ``payload`` on this device's ``leaf`` topic (stats, pair) when connected.

        Not durable: while the broker is away, the newest EXTRA_MAX such messages wait, older ones are
        dropped (a heartbeat or pairing request is worth sending again, not keeping)."""
        self._extra.append((device_topic(self.device_id, leaf), payload, qos))
        self._wake.set()

    def wake(self) -> None:
        """New events are in the outbox: publish them now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> bool:
        """Publish the retained ``offline`` status, disconnect and end the thread; False if it outlived timeout."""
        if self._thread is None:
            return True
        self._stop_deadline = self._clock() + timeout * 0.8
        self._stop.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- worker thread -----------------------------------------------------------------------------------

    def _run(self) -> None:
        cfg = self.config
        attempt = refused = 0
        while not self._stop.is_set():
            try:
                if self._session():
                    attempt = refused = 0
            except Exception:
                log.exception("MQTT link %s: unexpected error; reconnecting", self.device_id)
            self._connected = self._subscribed = False
            self._inflight.clear()
            if self._refused is Refusal.CREDENTIALS:  # every retry is refused until staff act: wait longer
                longest = backoff_delay(refused, cfg.backoff_max, max(cfg.backoff_max, cfg.refused_backoff_max))
                refused += 1
            else:
                longest = backoff_delay(attempt, cfg.backoff_min, cfg.backoff_max)
                attempt += 1
            self._stop.wait(random.uniform(max(cfg.backoff_min, longest / 2), longest))

    def _new_client(self) -> mqtt.Client:
        client = link_client(self.config, self.device_id, self.status_topic)
        client.on_connect, client.on_disconnect, client.on_publish, client.on_message, client.on_subscribe = (
            self._on_connect, self._on_disconnect, self._on_publish, self._on_message, self._on_subscribe)
        client.max_inflight_messages_set(self.config.inflight_max)
        return client

    def _session(self) -> bool:
        """One connection from connect to loss or stop; True when the broker accepted it."""
        cfg = self.config
        self._refused = None
        try:
            client = self._new_client()
            connect(client, cfg)  # resuming the persistent session: commands sent while away wait at the broker
        except (OSError, ValueError) as exc:  # unreachable broker, TLS failure, unreadable password file
            log.warning("MQTT link %s: cannot connect to %s:%d: %s", self.device_id, cfg.host, cfg.port, exc)
            return False
        deadline = self._clock() + CONNACK_SECONDS
        while not self._connected:
            if self._stop.is_set() or self._refused is not None:
                return False
            if self._clock() > deadline:
                log.warning("MQTT link %s: no CONNACK from %s:%d", self.device_id, cfg.host, cfg.port)
                return False
            if client.loop(LOOP_SECONDS) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return False
        next_poll = self._clock()
        while not self._stop.is_set():
            if self.receipts is not None and self.receipts.resend_due():
                self._cursor, self._dirty = 0, True  # the bridge is silent: everything unreceipted again
            if self._wake.is_set() or self._dirty or self._clock() >= next_poll:
                self._wake.clear()
                self._publish_pending(client)
                self._publish_extra(client)
                next_poll = self._clock() + POLL_SECONDS
            if client.loop(LOOP_SECONDS) != MQTTErrorCode.MQTT_ERR_SUCCESS or not self._connected:
                log.warning("MQTT link %s: connection lost; unacknowledged events stay in the outbox", self.device_id)
                return True
        self._say_offline(client)
        return True

    def _publish_pending(self, client: mqtt.Client) -> None:
        self._dirty = False
        room = self.config.inflight_max - len(self._inflight)
        if room <= 0:
            return
        try:
            rows = self._outbox.unreceipted(after_seq=self._cursor, limit=room)
        except Exception as exc:  # a busy or failing outbox: try again at the next poll
            log.warning("MQTT link %s: cannot read the outbox: %s", self.device_id, exc)
            return
        in_flight = set(self._inflight.values())
        for seq, event_id, topic, payload in rows:
            if event_id in in_flight:  # a resend round caught up with a publish still waiting for its PUBACK
                self._cursor = seq
                continue
            try:
                info = client.publish(topic, payload, qos=1)
            except (ValueError, TypeError) as exc:  # a bad topic or payload: the row stays; retried next round
                log.warning("MQTT link %s: event %s not publishable to %r: %s", self.device_id, event_id, topic, exc)
                self._cursor = seq
                continue
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return  # the connection is going; the rows wait for the next one
            self._inflight[info.mid] = event_id
            self._cursor = seq
            self._sent += 1

    def _publish_extra(self, client: mqtt.Client) -> None:
        while self._extra and self._connected:
            # Taken before publishing: send() may append meanwhile, and a full deque then drops its oldest.
            topic, payload, qos = item = self._extra.popleft()
            try:
                info = client.publish(topic, payload, qos=qos)
            except (ValueError, TypeError) as exc:
                log.warning("MQTT link %s: message to %r not publishable: %s", self.device_id, topic, exc)
                continue
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._extra.appendleft(item)  # the connection is going: keep it for the next one
                return

    def _say_offline(self, client: mqtt.Client) -> None:
        """Clean stop: the waiting stats and pair requests, the retained ``offline`` (waiting for its PUBACK until
        the stop deadline), then DISCONNECT."""
        self._publish_extra(client)  # a last heartbeat sent just before stop() goes out ahead of ``offline``
        info = client.publish(self.status_topic, status_payload("offline", int(time.time() * 1000)), qos=1,
                              retain=True)
        self._offline_mid = info.mid
        while not self._offline_acked and self._connected and self._clock() < self._stop_deadline:
            client.loop(min(LOOP_SECONDS, max(0.0, self._stop_deadline - self._clock())))
        disconnect(client, self.config, self._offline_acked)  # not acked: the broker still publishes the will
        client.loop(LOOP_SECONDS)  # flush the DISCONNECT

    # -- paho callbacks (called on the worker thread, inside client.loop) ---------------------------------

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode,
                    _properties: Properties | None) -> None:
        self._refused = self.refusals.connack(reason)
        if self._refused is not None:
            return
        self._connected, self._dirty = True, True
        self._inflight.clear()
        self._cursor = 0  # everything still in the outbox goes out again on this connection
        if self.receipts is not None:
            self.receipts.restart()
        client.publish(self.status_topic, status_payload("online", int(time.time() * 1000)), qos=1, retain=True)
        if self.on_command is not None or self.receipts is not None:
            client.subscribe(self.command_topic, qos=1)
        log.info("MQTT link %s: connected to %s:%d", self.device_id, self.config.host, self.config.port)

    def _on_subscribe(self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: list[ReasonCode],
                      _properties: Properties | None) -> None:
        self._subscribed = all(_ok(reason) for reason in reasons)
        if not self._subscribed:
            log.warning("MQTT link %s: broker refused the command subscription: %s", self.device_id, reasons)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        name = message.topic.rsplit("/", 1)[-1]
        if name == "receipt" and self.receipts is not None:
            try:
                self.receipts.handle(bytes(message.payload))
            except Exception:  # an outbox that cannot delete now: the next receipt covers these events too
                log.exception("MQTT link %s: receipt not applied", self.device_id)
            return
        if self.on_command is None:
            return
        try:
            self.on_command(name, bytes(message.payload))
        except Exception:  # a bad command never stops the link
            log.exception("MQTT link %s: command %s failed", self.device_id, name)

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode,
                       _properties: Properties | None) -> None:
        self._connected = self._subscribed = False

    def _on_publish(self, _client: mqtt.Client, _userdata: Any, mid: int, reason: ReasonCode,
                    _properties: Properties | None) -> None:
        if mid == self._offline_mid:
            self._offline_acked = True
            return
        event_id = self._inflight.pop(mid, None)
        if event_id is None:  # the birth status
            return
        self._dirty = True
        if not _ok(reason):  # kept in the outbox: sent again on the next connection or resend round
            log.warning("MQTT link %s: broker refused event %s: %s", self.device_id, event_id, reason)
            return
        if self.receipts is not None:  # the bridge's receipt, not the broker's PUBACK, deletes it
            self._acked += 1
            return
        try:
            self._outbox.ack(event_id)
        except Exception as exc:  # the row stays and is sent again: a duplicate, which the bridge drops
            log.warning("MQTT link %s: cannot delete acknowledged event %s: %s", self.device_id, event_id, exc)
            return
        self._acked += 1
