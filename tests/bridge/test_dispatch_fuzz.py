"""Fuzzing the bridge's MQTT side with hypothesis: valid signed events, the same events mutated (bytes flipped,
cut, spaced, re-ordered, escaped, re-signed with a wrong key or a wrong field, padded signatures, duplicate
keys, oversized, spliced), random bytes and JSON, on event, pair, stats and status topics of registered,
foreign and unknown units and on non-device topics, handled one by one and in consumer batches (SQLite and
PostgreSQL). Whatever arrives: no exception, every rejection counted and kept as a dead letter with its
reason and a detail (never ``internal``), every stored event stored once with the bytes received, and a valid
event stored or recognised as a redelivery.

``INVIGIL_FUZZ_LONG=1`` (``make fuzz``) runs 10,000 examples per store instead of 150, and writes the
outcome counts to ``build/fuzz/dispatch.json``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from cloud_bridge.dead_letters import DeadLetters
from cloud_bridge.services import Services
from cloud_bridge.store import Store
from cloud_bridge.store.models import DeadLetter, DeadLetterTally, EventRow
from edge_app.protocol import (
    KEYWORD,
    KIND_CODES,
    MAX_REFUSED,
    REFUSAL_REASONS,
    SEVERITIES,
    Event,
    ProtocolError,
    b64,
    canonical,
    device_topic,
    encode_event,
    signed_bytes,
)
from edge_app.protocol.commands import PAIR_CODE_ALPHABET, seal
from edge_app.protocol.transport import status_payload
from tests.bridge.parts import BRIDGE_KEY, DEVICE_KEY, OTHER_KEY, PHOTO, Published, register
from tools.bench import write_report

ROOT = Path(__file__).resolve().parents[2]
LONG = os.environ.get("INVIGIL_FUZZ_LONG") == "1"
EXAMPLES = 10_000 if LONG else 150
KEYS = {"unit-1": DEVICE_KEY, "unit-2": OTHER_KEY}  # registered; ghost-1 is not
OUTCOMES: dict[str, Counter[str]] = {}  # store (sqlite, postgresql) -> outcome -> messages

ids = st.binary(min_size=16, max_size=16).map(b64)
json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
                           | st.text(max_size=40), lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=5), max_leaves=10)


@st.composite
def valid_events(draw: st.DrawFn) -> tuple[str, bytes]:
    """A registered unit and an event it signed that follows the contract."""
    device = draw(st.sampled_from(sorted(KEYS)))
    kind = draw(st.sampled_from(sorted(KIND_CODES)))
    phase = "start" if kind in ("events_refused", "speech_keyword") else draw(st.sampled_from(["start", "update",
                                                                                               "end"]))
    seq = draw(st.integers(1, 40) | st.integers(1, 999_999_999))
    first = draw(st.integers(0, 9_999_999_999))
    event = Event(
        event_id=draw(ids), device_id=device, seq=seq, time_ms=draw(st.integers(0, 9_999_999_999_999)), kind=kind,
        phase=phase, severity=draw(st.sampled_from(SEVERITIES)), confidence=draw(st.floats(0, 1)),
        prev_hash="" if seq == 1 else draw(st.binary(min_size=16, max_size=16).map(b64)),
        box=draw(st.none() | st.tuples(*[st.floats(0, 1)] * 4)) if kind not in ("events_refused", "speech_keyword")
        else None,
        evidence=draw(st.none() | ids) if phase == "start" and kind != "events_refused" else None,
        alert_id=draw(ids) if phase != "start" else None,
        keyword=draw(st.from_regex(KEYWORD, fullmatch=True)) if kind == "speech_keyword" else None,
        refused=(draw(st.integers(1, MAX_REFUSED)), first, draw(st.integers(first, 9_999_999_999)))
        if kind == "events_refused" else None,
        refused_reason=draw(st.sampled_from(REFUSAL_REASONS)) if kind == "events_refused" else None)
    try:
        return device, encode_event(event, KEYS[device])
    except ProtocolError:  # e.g. a keyword that makes it longer than 300 bytes: not a valid event after all
        return device, encode_event(Event(event.event_id, device, seq, 0, "phone", "start", "info", 0.5, ""),
                                    KEYS[device])


def _resign(fields: dict[str, Any], key: Any) -> bytes:
    fields = {k: v for k, v in fields.items() if k != "sig"}
    return canonical({**fields, "sig": b64(key.sign(signed_bytes(fields)))})


@st.composite
def mutated(draw: st.DrawFn, payload: bytes) -> bytes:
    """``payload`` changed in one of the ways a broken or hostile sender would."""
    fields: dict[str, Any] = json.loads(payload)
    at = draw(st.integers(0, len(payload)))
    how = draw(st.sampled_from(["flip", "cut", "space", "order", "escape", "field", "other_key", "padding",
                                "duplicate_key", "oversized", "splice", "low_bits"]))
    if how == "flip":
        return payload[:at] + bytes([draw(st.integers(0, 255))]) + payload[at + 1:]
    if how == "cut":
        return payload[:at]
    if how == "space":
        return payload[:at] + draw(st.sampled_from([b" ", b"\n", b"\t", b"\r\n"])) + payload[at:]
    if how == "order":
        keys = draw(st.permutations(sorted(fields)))
        return json.dumps({k: fields[k] for k in keys}, separators=(",", ":")).encode()
    if how == "escape":
        text = payload.decode()
        spots = [i for i, ch in enumerate(text) if ch.isalnum()]
        i = draw(st.sampled_from(spots))
        return (text[:i] + f"\\u{ord(text[i]):04x}" + text[i + 1:]).encode()
    if how == "field":
        fields[draw(st.sampled_from([*sorted(fields), "x", "w", "g", "r", "b"]))] = draw(json_values)
        return _resign(fields, KEYS.get(fields.get("d"), DEVICE_KEY) if isinstance(fields.get("d"), str)
                       else DEVICE_KEY)
    if how == "other_key":
        return _resign(fields, draw(st.sampled_from([OTHER_KEY, DEVICE_KEY, BRIDGE_KEY])))
    if how == "padding":
        return payload.replace(b'"}', b'=="}') if payload.endswith(b'"}') else payload + b"="
    if how == "duplicate_key":
        return payload[:-1] + b',"k":"ph"}'
    if how == "oversized":
        return payload[:-1] + b',"x":"' + b"a" * draw(st.integers(1, 5000)) + b'"}'
    if how == "splice":
        return payload + payload[:at]
    sig = fields["sig"]  # low bits: the unused bits of the signature's last character set
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet[alphabet.index(sig[-1]) | draw(st.integers(1, 3))]
    return payload.replace(sig.encode(), (sig[:-1] + last).encode())


@st.composite
def messages(draw: st.DrawFn) -> tuple[str, bytes, bool]:
    """(topic, payload, valid): valid is true for an unchanged event on its own unit's event topic."""
    kind = draw(st.sampled_from(["valid", "valid", "mutated", "mutated", "wrong_topic", "garbage", "json",
                                 "pair", "stats", "status", "bad_topic"]))
    device, payload = draw(valid_events())
    if kind == "valid":
        return device_topic(device, "event"), payload, True
    if kind == "mutated":
        return device_topic(device, "event"), draw(mutated(payload)), False
    if kind == "wrong_topic":
        other = draw(st.sampled_from([d for d in (*KEYS, "ghost-1") if d != device]))
        return device_topic(other, draw(st.sampled_from(["event", "pair", "stats"]))), payload, False
    leaf_device = draw(st.sampled_from([*KEYS, "ghost-1"]))
    if kind == "garbage":
        return device_topic(leaf_device, draw(st.sampled_from(["event", "pair", "stats", "status"]))), draw(
            st.binary(max_size=400)), False
    if kind == "json":
        body = draw(st.dictionaries(st.sampled_from(sorted({"v", "id", "d", "n", "t", "k", "p", "s", "c", "h",
                                                             "sig", "b", "e", "a", "w", "g", "r", "code", "via",
                                                             "state", "fps"})), json_values, max_size=14))
        return device_topic(leaf_device, draw(st.sampled_from(["event", "pair", "stats", "status"]))), json.dumps(
            body).encode(), False
    if kind == "pair":
        code = draw(st.text(PAIR_CODE_ALPHABET, min_size=8, max_size=8) | st.text(max_size=10))
        try:
            payload = seal("pair_request", {"d": leaf_device, "code": code, "via": "typed"},
                           KEYS.get(leaf_device, DEVICE_KEY), draw(st.integers(0, 2**44)))
        except ProtocolError:
            payload = json.dumps({"v": 1, "d": leaf_device, "code": code}).encode()
        return device_topic(leaf_device, "pair"), payload, False
    if kind == "stats":
        body = {"v": 1, "id": draw(ids), "t": draw(st.integers(0, 2**44)), "d": draw(st.sampled_from([*KEYS,
                                                                                                       "ghost-1"])),
                **draw(st.dictionaries(st.sampled_from(["fps", "inf_ms", "queue", "temp", "disk_mb", "session",
                                                         "uptime", "camera"]), json_values, max_size=4))}
        return device_topic(leaf_device, "stats"), canonical(body), False
    if kind == "status":
        state = draw(st.sampled_from(["online", "offline", "other"]))
        return device_topic(leaf_device, "status"), status_payload(state, draw(st.none() | st.integers(0, 2**44))), \
            False
    return draw(st.text(max_size=80)), payload, False


@pytest.fixture
def services(store: Store) -> Iterator[Services]:
    """The bridge's parts over ``store``: two registered units, unit-1 paired (its events become proctor alerts),
    every rejected message kept (no sampling), so each can be checked."""
    for device, key in KEYS.items():
        register(store, device, key)
    built = Services.build(store, Published(), BRIDGE_KEY)
    built.ingestor.dead_letters = DeadLetters(store, keep_burst=10**9, keep_per_second=10**6)
    view = built.sessions.create("math-101", "cand-1", PHOTO)
    built.sessions.pair("unit-1", view.pairing_code or "")
    yield built
    if LONG:
        write_report({"examples_per_store": EXAMPLES, **{name: {"messages": sum(counts.values()), "outcomes": dict(
            sorted(counts.items()))} for name, counts in OUTCOMES.items()}}, ROOT / "build" / "fuzz" / "dispatch.json")


def _tallies(store: Store) -> Counter[str]:
    with store.session() as session:
        return Counter(dict(session.execute(select(DeadLetterTally.reason, func.sum(DeadLetterTally.count))
                                            .group_by(DeadLetterTally.reason)).all()))


def _kept_after(store: Store, last_id: int) -> list[DeadLetter]:
    with store.session() as session:
        return list(session.scalars(select(DeadLetter).where(DeadLetter.id > last_id).order_by(DeadLetter.id)))


def _last_kept(store: Store) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.max(DeadLetter.id))) or 0)


def _rows(store: Store, event_id: str) -> list[bytes]:
    with store.session() as session:
        return [bytes(p) for p in session.scalars(select(EventRow.payload).where(EventRow.event_id == event_id))]


def check(store: Store, topic: str, payload: bytes, valid: bool, outcome: str | Exception) -> None:
    """One message's outcome holds up: no crash; a stored event once, with the bytes received; a valid event
    stored, or a redelivery, or its id taken by other bytes already."""
    assert isinstance(outcome, str), f"{topic}: {outcome!r}"
    counts = OUTCOMES.setdefault(store.engine.dialect.name, Counter())
    counts[outcome.split(":")[0] if outcome.startswith("refused") else outcome] += 1
    assert outcome != "dead_letter:internal", f"a crash on {topic} {payload!r}"
    if outcome in ("stored", "duplicate"):
        assert _rows(store, json.loads(payload)["id"]) == [payload]  # once, with the bytes received
    elif valid:
        assert outcome == "dead_letter:reused_id", outcome
        assert _rows(store, json.loads(payload)["id"]) not in ([], [payload])
    else:
        assert outcome.startswith(("dead_letter:", "refused:")) or outcome in ("stats", "status", "ignored",
                                                                                "paired"), outcome


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(batch=st.lists(messages(), min_size=1, max_size=6), together=st.booleans(), again=st.booleans())
def test_whatever_arrives_is_stored_once_or_dead_lettered_with_a_reason(
        services: Services, batch: list[tuple[str, bytes, bool]], together: bool, again: bool) -> None:
    dispatcher, store = services.dispatcher, services.store
    if again:  # a unit resending an event it sent before (its receipt was lost)
        batch = [*batch, next((m for m in batch if m[2]), batch[0])]
    tallies, last_kept = _tallies(store), _last_kept(store)
    if together:  # as a consumer hands over what arrived at once: one transaction
        outcomes = dispatcher.handle_batch([(topic, payload) for topic, payload, _ in batch])
    else:
        outcomes = [dispatcher.handle(topic, payload) for topic, payload, _ in batch]
    for (topic, payload, valid), outcome in zip(batch, outcomes, strict=True):
        check(store, topic, payload, valid, outcome)
    rejected = [str(o).split(":", 1)[1] for o in outcomes if str(o).startswith("dead_letter:")]
    assert _tallies(store) == tallies + Counter(rejected)  # every rejection counted once, by its reason
    kept = _kept_after(store, last_kept)
    assert sorted(d.reason for d in kept) == sorted(rejected) and all(d.detail for d in kept)
