"""The simulated side of the bridge bench: devices with their own keys and clients, a tally of arrivals.

Times are ``time.monotonic()``: the same clock in every process of the machine, so a fleet in a process of
its own (tools/bench/bridge_fleet.py) and the tally in the bench's are comparable."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from cloud_bridge.mqtt import SHARE_GROUP, Consumer
from edge_app.protocol import PREFIX, device_topic
from tools.scale.units import chained_events

EVENTS = f"$share/{SHARE_GROUP}/{PREFIX}/dev/+/event"
ALERTS = f"{PREFIX}/proctor/+/alerts"
STALL_SECONDS = 15.0  # a run gives up when nothing new arrives for this long (messages lost)
CONNECT_SECONDS = 10.0
Batches = list[list[bytes]]  # each device's pre-signed payloads


def wait(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.002)


def connect(port: int, client_id: str, topics: Sequence[str] = (),
            on_message: Callable[..., None] | None = None) -> mqtt.Client:
    """A clean-session MQTT 5 client on 127.0.0.1:``port``, connected and with ``topics`` (QoS 1) subscribed."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5)
    ready = threading.Event()
    client.on_connect = lambda c, *_a: c.subscribe([(t, 1) for t in topics]) if topics else ready.set()
    client.on_subscribe = lambda *_a: ready.set()
    if on_message is not None:
        client.on_message = on_message
    client.connect("127.0.0.1", port, clean_start=True)
    client.loop_start()
    if not ready.wait(CONNECT_SECONDS):
        raise RuntimeError(f"{client_id}: not connected and subscribed within {CONNECT_SECONDS:g} s")
    return client


def close(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


def stop(consumers: list[Consumer]) -> None:
    for consumer in consumers:
        consumer.stop()


class Tally:
    """The outcomes of the messages handled so far (thread-safe) and when the last ``counted`` one came."""

    def __init__(self, counted: str) -> None:
        self.counted, self.lock, self.outcomes = counted, threading.Lock(), Counter[str]()
        self.done, self.last = 0, 0.0

    def add(self, outcome: str) -> None:
        now = time.monotonic()
        with self.lock:
            self.outcomes[outcome] += 1
            if outcome == self.counted:
                self.done, self.last = self.done + 1, now

    def wait(self, total: int) -> None:
        """Until ``total`` messages are handled (whatever the outcome), or none is for STALL_SECONDS."""
        seen, since = -1, time.monotonic()
        while (handled := sum(self.outcomes.values())) < total and time.monotonic() - since < STALL_SECONDS:
            if handled != seen:
                seen, since = handled, time.monotonic()
            time.sleep(0.005)

    def figures(self, total: int, start: float, acked: float) -> dict[str, Any]:
        seconds = max(self.last - start, 1e-9)
        return {"events": total, "counted": self.done, "lost": total - sum(self.outcomes.values()),
                "seconds": round(seconds, 3), "events_per_s": round(self.done / seconds, 1),
                "publish_seconds": round(acked - start, 3), "outcomes": dict(self.outcomes)}


@dataclass
class Device:
    device_id: str
    key: Ed25519PrivateKey
    client: mqtt.Client

    def signed(self, count: int) -> list[tuple[str, bytes]]:
        """``count`` chained events from sequence 1 (a fresh store): (event id, payload)."""
        return chained_events(self.device_id, self.key, count)

    def publish(self, payload: bytes) -> None:
        self.client.publish(device_topic(self.device_id, "event"), payload, qos=1)


class Fleet:
    """N devices, each its own paho client (``<client_prefix>-<n>``) and key (new ones, or ``keys``); counts the
    PUBACKs of their events."""

    def __init__(self, port: int, count: int, keys: Sequence[Ed25519PrivateKey] | None = None,
                 client_prefix: str = "bench-dev") -> None:
        self.lock, self.acked, self.last_ack = threading.Lock(), 0, 0.0
        keys = keys or [Ed25519PrivateKey.generate() for _ in range(count)]
        self.devices = [Device(f"bench-{i:03d}", keys[i], connect(port, f"{client_prefix}-{i}")) for i in range(count)]
        for device in self.devices:
            device.client.on_publish = self._acked

    def _acked(self, *_args: Any) -> None:
        now = time.monotonic()
        with self.lock:
            self.acked, self.last_ack = self.acked + 1, now

    def blast(self, batches: Batches) -> tuple[float, float]:
        """Publish each device's batch, interleaved, as fast as QoS 1 allows; (first publish, last PUBACK)."""
        target = self.acked + sum(len(batch) for batch in batches)
        start = time.monotonic()
        for round_ in zip_longest(*batches):
            for device, payload in zip(self.devices, round_, strict=True):
                if payload is not None:
                    device.publish(payload)
        wait(lambda: self.acked >= target, STALL_SECONDS * 4)
        return start, self.last_ack

    def close(self) -> None:
        for device in self.devices:
            close(device.client)
