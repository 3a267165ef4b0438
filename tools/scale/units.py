"""Simulated camera units: their own Ed25519 keys, chained signed events as edge_app makes them, MQTT 3.1.1.

``chained_events`` is the one place the benches and the simulator sign events (tools/bench/bridge_parts.py's
``Device.signed`` uses it too). A ``Unit`` publishes at QoS 1 through :mod:`tools.scale.mqtt311`; when its
connection is lost it reconnects to the next broker address it knows and sends the unacknowledged event
again, as a unit does (ingest is idempotent). ``acked`` holds the ids of the events the broker acknowledged;
``resend_after`` is the unit's side of the bridge's receipts (cloud_bridge/receipts.py): what is not receipted
is sent again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_app.protocol import Event, chain_hash, device_topic, encode_event, new_event_id
from edge_app.protocol.keys import public_pem
from edge_app.protocol.transport import status_payload
from tools.scale.mqtt311 import Client, MqttError, Will

RECONNECT_TRIES = 40
RECONNECT_PAUSE = 0.25


def chained_events(device_id: str, key: Ed25519PrivateKey, count: int, first_seq: int = 1,
                   previous: bytes | None = None) -> list[tuple[str, bytes]]:
    """``count`` signed, chained events from ``first_seq`` after the payload ``previous``: (event id, payload)."""
    out: list[tuple[str, bytes]] = []
    prev_hash, now_ms = chain_hash(previous) if previous else "", int(time.time() * 1000)
    for seq in range(first_seq, first_seq + count):
        event = Event(event_id=new_event_id(now_ms), device_id=device_id, seq=seq, time_ms=now_ms + seq, kind="phone",
                      phase="start", severity="critical", confidence=0.9, prev_hash=prev_hash, box=(0.1, 0.2, 0.3, 0.4))
        out.append((event.event_id, encode_event(event, key)))
        prev_hash = chain_hash(out[-1][1])
    return out


@dataclass
class Unit:
    device_id: str
    brokers: Sequence[tuple[str, int]]  # tried in turn, from ``home``
    home: int = 0
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    client: Client | None = None
    seq: int = 0
    last: bytes | None = None
    acked: dict[str, float] = field(default_factory=dict)  # event id -> time of its PUBACK (time.time())
    sent: dict[str, float] = field(default_factory=dict)  # event id -> time of its first publish (time.time())
    reconnects: int = 0
    history: list[tuple[str, bytes]] = field(default_factory=list)  # every event made, in sequence order

    @property
    def public_pem(self) -> str:
        return public_pem(self.key)

    async def connect(self) -> None:
        host, port = self.brokers[self.home % len(self.brokers)]
        will = Will(device_topic(self.device_id, "status"), status_payload("offline"))
        self.client = await Client.connect(host, port, f"unit-{self.device_id}", will=will)
        await self.client.publish(device_topic(self.device_id, "status"),
                                  status_payload("online", int(time.time() * 1000)), retain=True)

    def next_event(self) -> tuple[str, bytes]:
        event_id, payload = chained_events(self.device_id, self.key, 1, self.seq + 1, self.last)[0]
        self.seq, self.last = self.seq + 1, payload
        self.history.append((event_id, payload))
        return event_id, payload

    async def start(self) -> None:
        """Connect, failing over to the next broker while one refuses (e.g. a cluster still electing)."""
        await self._until_done(None)

    async def send(self, event_id: str, payload: bytes) -> None:
        """Publish at QoS 1 until acknowledged, failing over to the next broker when the connection is lost."""
        self.sent.setdefault(event_id, time.time())
        await self._until_done(payload)
        self.acked[event_id] = time.time()

    async def _until_done(self, payload: bytes | None) -> None:
        for _ in range(RECONNECT_TRIES):
            try:
                if self.client is None or self.client.closed.done():
                    self.reconnects += 1
                    await self.connect()
                assert self.client is not None
                if payload is not None:
                    await asyncio.wait_for(self.client.publish(device_topic(self.device_id, "event"), payload), 10.0)
                return
            except (TimeoutError, MqttError, OSError):
                if self.client is not None:
                    await self.client.close(graceful=False)
                self.client = None
                self.home += 1
                await asyncio.sleep(RECONNECT_PAUSE)
        raise MqttError(f"{self.device_id}: no broker answered after {RECONNECT_TRIES} tries")

    async def publish_next(self) -> str:
        event_id, payload = self.next_event()
        await self.send(event_id, payload)
        return event_id

    async def resend_after(self, receipted: int) -> int:
        """Send again every event after sequence ``receipted`` (the bridge's receipt: 1..n stored), as a unit
        does after a receipt timeout; how many."""
        for event_id, payload in self.history[receipted:]:
            await self.send(event_id, payload)
        return len(self.history) - receipted

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
