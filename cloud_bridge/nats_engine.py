"""The bridge on a NATS cluster (``[broker] engine = "nats"``, docs/scale.md): a publisher and the stream consumer.

NATS's MQTT gateway (nats-server 2.9) keeps the messages for MQTT subscribers at QoS 1 in its own replicated
stream, ``$MQTT_msgs``, under ``$MQTT.msgs.<subject>``, and delivers from it to every QoS 1 subscription,
including the persistent session of a unit that is away. :class:`NatsPublisher` publishes the outbox's
messages (proctor alerts, commands, receipts) into that stream through JetStream, so the acknowledgement the
outbox waits for means "stored, replicated, and delivered by the gateway to every QoS 1 subscriber", as a
broker's PUBACK does for Mosquitto. This relies on the gateway's internal subject and its ``Nmqtt-Pub`` header
(without it, delivery was seen to stall in 1 of 2 runs); re-test on a server upgrade. What NATS cannot do from
here: retain (a retained command is delivered, not kept for a newcomer; clearing one publishes nothing) and
QoS 2 (2.9 has none: such a message goes out at QoS 1, at least once). QoS 0 is a plain NATS publish.

:class:`StreamConsumer` runs cloud_bridge.jetstream's consumer on a thread of its own, shaped like
cloud_bridge.mqtt.Consumer for the running bridge (``start``, ``stop``, ``subscribed``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from typing import Any

import nats
from nats.aio.client import Client as NatsClient

from cloud_bridge.jetstream import BatchHandler, JetStreamConsumer

log = logging.getLogger(__name__)
MQTT_MSGS = "$MQTT.msgs."  # the gateway's stream subjects for QoS 1 delivery to MQTT subscribers (2.9)
HEADERS = {"Nmqtt-Pub": "1"}  # the header the gateway puts on what an MQTT client published at QoS 1
RETRY_SECONDS = 1.0


def subject_of(topic: str) -> str:
    """The NATS subject of an MQTT topic (the prefix, device ids and leaves hold no dots to escape)."""
    return topic.replace("/", ".")


class Sent:
    """A publish in flight; ``is_published()`` once JetStream acknowledged storing it (never, if that failed:
    the outbox publishes it again after its ``resend_after``)."""

    def __init__(self, future: concurrent.futures.Future[None]) -> None:
        self.future = future

    def is_published(self) -> bool:
        return self.future.done() and not self.future.cancelled() and self.future.exception() is None


class NatsPublisher:
    """The outbox's publish function on NATS: a connection (any of ``servers``; it reconnects on its own) on a
    thread of its own; ``publish`` may be called from any thread."""

    def __init__(self, servers: list[str], timeout: float = 10.0) -> None:
        self.servers, self.timeout = servers, timeout
        self.connected = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="bridge-nats-publisher", daemon=True)
        self._connection: NatsClient | None = None
        self._stopping = False

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._connect(), self._loop)

    async def _connect(self) -> None:
        async def lost() -> None:
            self.connected.clear()

        async def back() -> None:
            self.connected.set()

        while not self._stopping:
            try:
                self._connection = await nats.connect(
                    servers=self.servers, max_reconnect_attempts=-1, reconnect_time_wait=0.2, connect_timeout=5,
                    disconnected_cb=lost, reconnected_cb=back)
            except Exception as exc:  # no node reachable yet
                log.warning("bridge publisher: cannot connect to NATS: %r", exc)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            self.connected.set()
            return

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> Sent | None:
        """Hand a message over (ConnectionError while not connected: the outbox's relay tries again). None for
        clearing a retained message, which NATS does not keep."""
        if retain and not payload:
            return None
        if self._connection is None or not self.connected.is_set():
            raise ConnectionError("not connected to NATS")
        return Sent(asyncio.run_coroutine_threadsafe(self._send(self._connection, topic, payload, qos), self._loop))

    async def _send(self, connection: NatsClient, topic: str, payload: bytes, qos: int) -> None:
        if qos == 0:
            await connection.publish(subject_of(topic), payload)
            return
        await connection.jetstream(timeout=self.timeout).publish(MQTT_MSGS + subject_of(topic), payload,
                                                                 headers=HEADERS)

    def stop(self) -> None:
        self._stopping = True
        if self._thread.is_alive():
            if self._connection is not None:
                try:
                    asyncio.run_coroutine_threadsafe(self._connection.close(), self._loop).result(self.timeout)
                except Exception as exc:  # a connection already gone
                    log.warning("bridge publisher: NATS close failed: %r", exc)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        self.connected.clear()


class StreamConsumer:
    """The JetStream consumer (``workers`` pull loops on the durable ``bridge``) on a thread of its own."""

    def __init__(self, servers: list[str], handle_batch: BatchHandler, *, workers: int, batch_max: int,
                 replicas: int) -> None:
        self.consumer = JetStreamConsumer(servers, handle_batch, workers=workers, batch_max=batch_max,
                                          replicas=replicas)
        self.subscribed = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="bridge-jetstream",
                                        daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stopping = False

    def start(self) -> None:
        self._thread.start()

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        if self._stopping:
            return
        ready: asyncio.Task[Any] = asyncio.create_task(self.consumer.ready.wait())
        ready.add_done_callback(lambda _t: self.subscribed.set())
        while not self._stop.is_set():
            try:
                await self.consumer.run(self._stop)
            except Exception as exc:  # no node reachable, the stream not creatable yet: try again
                log.warning("bridge jetstream consumer: %r; retrying", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), RETRY_SECONDS)
        ready.cancel()

    def stop(self) -> None:
        self._stopping = True
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
