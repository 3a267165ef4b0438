"""Test parts shared by the bridge tests: fixed keys, a settable clock, a publish that records, signed events."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from cloud_bridge.ingest import Ingestor
from cloud_bridge.store import Store
from edge_app.protocol import Event, chain_hash, encode_event, new_event_id
from edge_app.protocol.keys import public_pem

# Fixed test keys (not secrets: they sign nothing but these tests).
DEVICE_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(2, 34)))
BRIDGE_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(5, 37)))
PHOTO = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8  # starts like a JPEG; the bridge only forwards it
T0 = 1_800_000_000.0


class Clock:
    """A clock the test moves: ``clock()`` is the time, ``clock.advance(s)`` moves it on."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Published:
    """A publish callable that keeps what it is given: (topic, payload, qos, retain) tuples."""

    messages: list[tuple[str, bytes, int, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        with self.lock:
            self.messages.append((topic, payload, qos, retain))

    def on(self, topic: str) -> list[tuple[str, bytes, int, bool]]:
        return [m for m in self.messages if m[0] == topic]


def register(store: Store, device_id: str = "unit-1", key: Ed25519PrivateKey = DEVICE_KEY) -> None:
    Ingestor(store).register(device_id, public_pem(key))


def event_payloads(count: int, device_id: str = "unit-1", key: Ed25519PrivateKey = DEVICE_KEY,
                   kind: str = "phone") -> list[bytes]:
    """``count`` chained start events of one device."""
    out, previous = [], ""
    for seq in range(1, count + 1):
        event = Event(event_id=new_event_id(), device_id=device_id, seq=seq, time_ms=1_800_000_000_000 + seq,
                      kind=kind, phase="start", severity="critical", confidence=0.9, prev_hash=previous)
        payload = encode_event(event, key)
        out.append(payload)
        previous = chain_hash(payload)
    return out


def count(store: Store, table: type) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)
