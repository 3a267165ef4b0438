"""Test parts of the review: a unit whose signed alerts (start .. end) reach the bridge through its dispatcher, a
session on a settable clock, snapshots uploaded as the API takes them."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_bridge.services import Services
from cloud_bridge.store import Store
from cloud_bridge.store.models import Evidence
from edge_app.protocol import Event, b64, chain_hash, device_topic, encode_event, new_event_id
from tests.bridge.parts import DEVICE_KEY, PHOTO, T0, Clock, register


def digest_of(data: bytes) -> str:
    return b64(hashlib.sha256(data).digest()[:16])


class UnitChain:
    """A unit's chained, signed events, delivered through the bridge's dispatcher."""

    def __init__(self, services: Services, device_id: str = "unit-1", key: Ed25519PrivateKey = DEVICE_KEY) -> None:
        self.services, self.device_id, self.key = services, device_id, key
        self.seq, self.previous = 0, ""

    def event(self, at: float, kind: str, phase: str, severity: str = "critical", confidence: float = 0.9,
              alert_id: str | None = None, evidence: str | None = None, deliver: bool = True) -> Event:
        self.seq += 1
        event = Event(event_id=new_event_id(int(at * 1000)), device_id=self.device_id, seq=self.seq,
                      time_ms=int(at * 1000), kind=kind, phase=phase, severity=severity, confidence=confidence,
                      prev_hash=self.previous, alert_id=alert_id, evidence=evidence)
        payload = encode_event(event, self.key)
        self.previous = chain_hash(payload)
        if deliver:
            outcome = self.services.dispatcher.handle_batch([(device_topic(self.device_id, "event"), payload)])
            assert outcome == ["stored"], outcome
        return event

    def alert(self, start: float, end: float | None, kind: str = "phone", severity: str = "critical",
              confidence: float = 0.9, snapshot: bytes | None = None) -> str:
        """A start (with a snapshot, uploaded) and, unless ``end`` is None, its end event; the alert id."""
        digest = digest_of(snapshot) if snapshot else None
        started = self.event(start, kind, "start", severity, confidence, evidence=digest)
        if snapshot is not None:
            with self.services.store.session() as session, session.begin():
                session.add(Evidence(digest=digest, device_id=self.device_id, content_type="image/jpeg",
                                     data=snapshot, uploaded_at=time.time()))
        if end is not None:
            self.event(end, kind, "end", severity, confidence, alert_id=started.event_id)
        return started.event_id


@dataclass
class Scene:
    services: Services
    clock: Clock
    unit: UnitChain
    session_id: str
    pc_token: str = ""


def paired_session(store: Store, exam: str = "math-101", candidate: str = "cand-1", device: str = "unit-1",
                   services: Services | None = None, clock: Clock | None = None) -> Scene:
    """A session paired at T0 (the clock's time) with a registered unit."""
    services = services or Services.build(store)
    clock = clock or Clock(T0)
    services.sessions.clock = clock
    services.feed.clock = clock
    register(store, device)
    view = services.sessions.create(exam, candidate, PHOTO)
    services.sessions.pair(device, view.pairing_code or "")
    return Scene(services, clock, UnitChain(services, device), view.session_id)
