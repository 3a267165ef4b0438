"""Ingest on SQLite and PostgreSQL: stored once, flagged gaps and broken chains, dead letters with reasons; a
batch in one transaction with each event's one-by-one outcome, a bad message isolated."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from cloud_bridge.ingest import Ingestor
from cloud_bridge.store import Store
from cloud_bridge.store.models import DeadLetter, Device, EventRow, Gap
from edge_app.link.events import EventWriter
from edge_app.link.outbox import Outbox, OutboxError
from edge_app.protocol import Event, chain_hash, encode_event, new_event_id
from edge_app.protocol.keys import public_pem
from tests.protocol.alterations import ALTERATIONS

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
INTRUDER = Ed25519PrivateKey.from_private_bytes(bytes(range(2, 34)))
TOPIC = "invigil/v1/dev/unit-1/event"


def events(count: int, device: str = "unit-1", key: Ed25519PrivateKey = KEY) -> list[bytes]:
    out, previous = [], ""
    for seq in range(1, count + 1):
        event = Event(event_id=new_event_id(), device_id=device, seq=seq, time_ms=1_700_000_000_000 + seq,
                      kind="phone", phase="start", severity="critical", confidence=0.9, prev_hash=previous)
        payload = encode_event(event, key)
        out.append(payload)
        previous = chain_hash(payload)
    return out


def ingestor(store: Store) -> Ingestor:
    ingest = Ingestor(store, clock=lambda: 1000.0)
    ingest.register("unit-1", public_pem(KEY))
    return ingest


def count(store: Store, table: type) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def test_events_are_stored_once_in_order(store: Store) -> None:
    ingest = ingestor(store)
    payloads = events(3)
    assert [ingest.handle(TOPIC, p).status for p in payloads] == ["stored"] * 3
    assert ingest.handle(TOPIC, payloads[1]).status == "duplicate"  # re-sent after a reconnect
    assert count(store, EventRow) == 3 and count(store, DeadLetter) == 0


def test_a_lost_event_is_flagged_as_a_gap_once_the_hole_has_lasted(store: Store) -> None:
    now = [1000.0]
    ingest = Ingestor(store, clock=lambda: now[0])
    ingest.register("unit-1", public_pem(KEY))
    payloads = events(5)
    outcomes = [ingest.handle(TOPIC, p) for p in (payloads[0], payloads[2], payloads[3])]
    assert [(o.status, o.reason) for o in outcomes] == [("stored", None)] * 3  # event 2 may still be on its way
    assert ingest.flag_gaps(gap_after=30) == []
    now[0] += 31
    assert ingest.flag_gaps(gap_after=30) == [("unit-1", 2, 2)]
    assert ingest.flag_gaps(gap_after=30) == []  # reported once
    assert ingest.handle(TOPIC, payloads[4]).reason is None
    with store.session() as session:
        flags = {seq: flag for seq, flag in session.execute(select(EventRow.seq, EventRow.flag))}
    assert flags == {1: None, 3: "gap", 4: None, 5: None}
    with store.session() as session:
        gap = session.scalars(select(Gap)).one()
    assert (gap.reason, gap.count, gap.first_seq, gap.last_seq, gap.event_id) == (
        "missing", 1, 2, 2, json.loads(payloads[2])["id"])


@pytest.mark.parametrize("order", [(2, 1, 3, 4), (4, 3, 2, 1), (1, 3, 2, 4), (3, 1, 4, 2)])
def test_events_out_of_order_from_several_workers_raise_no_flag(store: Store, order: tuple[int, ...]) -> None:
    ingest = ingestor(store)
    payloads = events(4)
    assert [ingest.handle(TOPIC, payloads[n - 1]).reason for n in order] == [None] * 4
    assert ingest.flag_gaps(gap_after=0) == []
    with store.session() as session:
        assert session.scalar(select(Device.last_seq).where(Device.device_id == "unit-1")) == 4


def test_an_altered_event_breaks_the_chain_whichever_neighbour_arrives_first(store: Store) -> None:
    ingest = ingestor(store)
    honest = events(3)
    altered = Event(event_id=new_event_id(), device_id="unit-1", seq=2, time_ms=1, kind="phone", phase="start",
                    severity="critical", confidence=0.9, prev_hash=chain_hash(honest[0]))
    assert ingest.handle(TOPIC, honest[2]).reason is None
    # event 3's h is the hash of the real event 2, so the altered one does not fit before it
    assert ingest.handle(TOPIC, encode_event(altered, KEY)).reason == "broken_chain"


def test_rewritten_history_is_flagged_as_a_broken_chain(store: Store) -> None:
    ingest = ingestor(store)
    honest = events(2)
    ingest.handle(TOPIC, honest[0])
    forged = Event(event_id=new_event_id(), device_id="unit-1", seq=2, time_ms=1, kind="phone", phase="start",
                   severity="critical", confidence=0.9, prev_hash=chain_hash(b"something else"))
    assert ingest.handle(TOPIC, encode_event(forged, KEY)).reason == "broken_chain"


def test_bad_messages_are_dead_lettered_with_reasons_and_the_loop_goes_on(store: Store) -> None:
    ingest = ingestor(store)
    bad = [
        ("invigil/v1/dev/unit-1/stats", events(1)[0], "bad_topic"),
        ("invigil/v1/dev/unit-9/event", events(1, device="unit-9")[0], "unknown_device"),
        (TOPIC, b"\x00\xff not json", "malformed"),
        (TOPIC, b"{" + b" " * 400 + b"}", "oversized"),
        (TOPIC, events(1, key=INTRUDER)[0], "bad_signature"),
        (TOPIC, events(1, device="unit-2")[0], "wrong_device"),  # unit-1's key, but claiming to be unit-2
    ]
    for topic, payload, reason in bad:
        outcome = ingest.handle(topic, payload)
        assert (outcome.status, outcome.reason) == ("dead_letter", reason)
    assert count(store, DeadLetter) == len(bad)
    assert ingest.handle(TOPIC, events(1)[0]).status == "stored"
    with store.session() as session:
        reasons = {row.reason: row.detail for row in session.scalars(select(DeadLetter))}
    assert "unit-9 is not registered" in reasons["unknown_device"]


def test_a_device_cannot_publish_as_another(store: Store) -> None:
    ingest = ingestor(store)
    other = Ed25519PrivateKey.generate()
    ingest.register("unit-2", public_pem(other))
    # unit-2 on unit-1's topic, with its own key: unit-1's key does not verify it
    outcome = ingest.handle(TOPIC, events(1, device="unit-2", key=other)[0])
    assert (outcome.status, outcome.reason) == ("dead_letter", "bad_signature")
    # unit-1 writing unit-2's events on unit-2's topic, signed with unit-1's key
    outcome = ingest.handle("invigil/v1/dev/unit-2/event", events(1, device="unit-2", key=KEY)[0])
    assert (outcome.status, outcome.reason) == ("dead_letter", "bad_signature")
    assert ingest.handle("invigil/v1/dev/unit-2/event", events(1, device="unit-2", key=other)[0]).status == "stored"


@pytest.mark.parametrize("name", sorted(ALTERATIONS))
def test_an_event_altered_on_the_way_is_dead_lettered_not_stored(store: Store, name: str) -> None:
    ingest = ingestor(store)
    alter, reason = ALTERATIONS[name]
    payloads = events(2)
    assert ingest.handle(TOPIC, payloads[0]).status == "stored"
    outcome = ingest.handle(TOPIC, alter(payloads[1]))
    assert (outcome.status, outcome.reason) == ("dead_letter", reason)
    assert count(store, EventRow) == 1
    assert ingest.handle(TOPIC, payloads[1]).reason is None  # the event as signed still fits the chain
    with store.session() as session:
        assert [row.reason for row in session.scalars(select(DeadLetter))] == [reason]


def test_a_reused_event_id_with_other_content_is_dead_lettered_and_a_redelivery_stored_once(store: Store) -> None:
    ingest = ingestor(store)
    first = events(1)[0]
    event_id = json.loads(first)["id"]
    other = encode_event(Event(event_id=event_id, device_id="unit-1", seq=2, time_ms=5, kind="material",
                               phase="start", severity="info", confidence=0.4, prev_hash=chain_hash(first)), KEY)
    assert ingest.handle(TOPIC, first).status == "stored"
    assert [ingest.handle(TOPIC, first).status for _ in range(3)] == ["duplicate"] * 3  # byte-identical: idempotent
    outcome = ingest.handle(TOPIC, other)
    assert (outcome.status, outcome.reason) == ("dead_letter", "reused_id")
    with store.session() as session:
        assert [bytes(p) for p in session.scalars(select(EventRow.payload))] == [first]
        letter = session.scalars(select(DeadLetter)).one()
    assert letter.reason == "reused_id" and event_id in letter.detail and bytes(letter.payload) == other


def test_an_event_id_of_another_unit_is_not_taken_as_a_redelivery(store: Store) -> None:
    ingest = ingestor(store)
    other_key = Ed25519PrivateKey.from_private_bytes(bytes(range(9, 41)))
    ingest.register("unit-2", public_pem(other_key))
    mine = events(1)[0]
    theirs = encode_event(Event(event_id=json.loads(mine)["id"], device_id="unit-2", seq=1, time_ms=5, kind="phone",
                                phase="start", severity="critical", confidence=0.9, prev_hash=""), other_key)
    assert ingest.handle(TOPIC, mine).status == "stored"
    outcome = ingest.handle("invigil/v1/dev/unit-2/event", theirs)
    assert (outcome.status, outcome.reason) == ("dead_letter", "reused_id")


def test_alerts_a_unit_refused_on_a_full_disk_become_a_gap_with_its_reason(store: Store, tmp_path: Path) -> None:
    ingest = ingestor(store)
    outbox = Outbox(tmp_path / "outbox.db")
    writer = EventWriter("unit-1", KEY, outbox, (640, 480))
    alert = {"type": "alert", "kind": "phone", "phase": "start", "severity": "critical", "confidence": 0.9}
    writer.write({**alert, "id": "first"}, now_ms=1_000_000)
    pages = outbox._db.execute("PRAGMA page_count").fetchone()[0]  # the unit's disk is full from here on
    outbox._db.execute(f"PRAGMA max_page_count = {pages}")
    refused = 0
    for n in range(200):
        try:
            writer.write({**alert, "id": f"a{n}"}, now_ms=2_000_000 + n * 1000)
        except OutboxError:
            refused += 1
    outbox._db.execute("PRAGMA max_page_count = 1000000")  # space is back
    writer.write({**alert, "id": "after"}, now_ms=3_000_000)
    outcomes = [ingest.handle(TOPIC, payload) for _, _, payload in outbox.pending(limit=1000)]
    assert [o.status for o in outcomes] == ["stored"] * len(outcomes)
    assert outcomes[-2].event is not None and outcomes[-2].event.kind == "events_refused"
    assert [o.reason for o in outcomes] == [None] * (len(outcomes) - 2) + ["disk_full", None]
    assert ingest.flag_gaps(gap_after=0) == []  # nothing lost on the way: the sequence has no hole
    with store.session() as session:
        gap = session.scalars(select(Gap)).one()
    assert (gap.device_id, gap.reason, gap.count, gap.first_seq) == ("unit-1", "disk_full", refused, None)
    assert refused > 100 and gap.last_at == 2_199 and gap.first_at == 2_200 - refused


# -- batches: one transaction for many events, each with the outcome it would have had alone ---------------

def faulty_chain(device: str, key: Ed25519PrivateKey) -> list[bytes]:
    """12 chained events of ``device`` with a forged 5th (a valid signature, but not the event 6 names), a replay
    of number 8 under another id and a resend of number 3, in a fixed shuffled order."""
    payloads = events(12, device, key)
    forged = Event(event_id=new_event_id(), device_id=device, seq=5, time_ms=5, kind="material", phase="start",
                   severity="info", confidence=0.5, prev_hash=chain_hash(payloads[3]))
    replay = Event(event_id=new_event_id(), device_id=device, seq=8, time_ms=8, kind="phone", phase="start",
                   severity="info", confidence=0.5, prev_hash=chain_hash(payloads[6]))
    mixed = [*payloads[:4], encode_event(forged, key), *payloads[5:], encode_event(replay, key), payloads[2]]
    random.Random(3).shuffle(mixed)
    return mixed


def test_a_batch_gets_the_outcomes_and_flags_of_one_by_one_ingest(store: Store) -> None:
    ingest = ingestor(store)
    ingest.register("unit-2", public_pem(INTRUDER))
    alone = [ingest.handle(TOPIC, payload) for payload in faulty_chain("unit-1", KEY)]
    batched = [("invigil/v1/dev/unit-2/event", payload) for payload in faulty_chain("unit-2", INTRUDER)]
    together = [outcome for start in range(0, len(batched), 5)
                for outcome in ingest.handle_batch(batched[start:start + 5])]
    assert [(o.status, o.reason) for o in together] == [(o.status, o.reason) for o in alone]
    assert {o.reason for o in alone} >= {"broken_chain", "replayed"} and "duplicate" in {o.status for o in alone}
    with store.session() as session:
        flags = {device: sorted((seq, flag or "") for seq, flag in session.execute(
            select(EventRow.seq, EventRow.flag).where(EventRow.device_id == device)))
            for device in ("unit-1", "unit-2")}
        marks = {device: seq for device, seq in session.execute(select(Device.device_id, Device.last_seq))}
    assert flags["unit-1"] == flags["unit-2"] and len(flags["unit-1"]) == 13
    assert marks == {"unit-1": 12, "unit-2": 12}


def test_bad_messages_in_a_batch_are_dead_lettered_and_the_good_ones_stored(store: Store) -> None:
    ingest = ingestor(store)
    good = events(4)
    reused = json.loads(events(1)[0])  # another event under good[1]'s id: a valid signature, other content
    reused["id"] = json.loads(good[1])["id"]
    batch = [(TOPIC, good[0]), (TOPIC, b"\x00 not json"), (TOPIC, good[1]), (TOPIC, events(1, key=INTRUDER)[0]),
             ("invigil/v1/dev/unit-9/event", events(1, device="unit-9")[0]), (TOPIC, good[1]),
             (TOPIC, encode_event(Event(event_id=reused["id"], device_id="unit-1", seq=9, time_ms=1, kind="phone",
                                        phase="start", severity="info", confidence=0.5, prev_hash="A" * 22), KEY)),
             (TOPIC, good[2]), (TOPIC, good[3])]
    outcomes = ingest.handle_batch(batch)
    assert [(o.status, o.reason) for o in outcomes] == [
        ("stored", None), ("dead_letter", "malformed"), ("stored", None), ("dead_letter", "bad_signature"),
        ("dead_letter", "unknown_device"), ("duplicate", None), ("dead_letter", "reused_id"), ("stored", None),
        ("stored", None)]
    assert count(store, EventRow) == 4 and count(store, DeadLetter) == 4
    with store.session() as session:
        assert session.scalar(select(Device.last_seq).where(Device.device_id == "unit-1")) == 4


def test_an_event_that_fails_its_batch_is_dead_lettered_alone_and_the_others_stored(store: Store) -> None:
    ingest = ingestor(store)
    payloads = events(4)
    culprit = json.loads(payloads[2])["id"]

    def also(_session: Any, stored: list[tuple[Event, str | None]]) -> list[None]:
        if any(event.event_id == culprit for event, _flag in stored):
            raise RuntimeError("a bug that only this event meets")
        return [None] * len(stored)

    outcomes = ingest.handle_batch([(TOPIC, p) for p in payloads], also)
    assert [(o.status, o.reason) for o in outcomes] == [("stored", None), ("stored", None),
                                                        ("dead_letter", "internal"), ("stored", None)]
    assert count(store, EventRow) == 3


def test_a_batch_the_database_fails_keeps_nothing_and_raises_for_the_consumer(store: Store) -> None:
    ingest = ingestor(store)

    def database_away(_session: Any, _stored: list[tuple[Event, str | None]]) -> list[None]:
        raise OperationalError("INSERT ...", {}, ConnectionError("the server closed the connection"))

    with pytest.raises(OperationalError):
        ingest.handle_batch([(TOPIC, p) for p in events(3)], database_away)
    assert count(store, EventRow) == 0 and count(store, DeadLetter) == 0
