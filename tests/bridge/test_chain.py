"""The chain check under concurrency, on SQLite and PostgreSQL: several workers ingesting one unit's events in
and out of order, one by one or in batches, move the watermark to the last event, flag every broken link and
raise no false gap."""

from __future__ import annotations

import queue
import random
import threading

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from cloud_bridge.ingest import Ingestor
from cloud_bridge.store import Store
from cloud_bridge.store.models import Device, EventRow, Gap
from edge_app.protocol import Event, chain_hash, encode_event, new_event_id
from tests.bridge.parts import DEVICE_KEY, Clock, event_payloads, register

TOPIC = "invigil/v1/dev/unit-1/event"
EVENTS, WORKERS = 120, 4
FORGED = tuple(range(5, EVENTS - 1, 10))  # replaced by another signed event: the link to the next one breaks


def forged_chain() -> tuple[list[bytes], set[tuple[int, int]]]:
    """``EVENTS`` events of unit-1 where each of ``FORGED`` is swapped for other content (a valid signature and
    a right ``h``, but the next event's ``h`` names the original); the broken links (seq, seq + 1)."""
    payloads = event_payloads(EVENTS)
    for seq in FORGED:
        other = Event(event_id=new_event_id(), device_id="unit-1", seq=seq, time_ms=1, kind="material",
                      phase="start", severity="info", confidence=0.5, prev_hash=chain_hash(payloads[seq - 2]))
        payloads[seq - 1] = encode_event(other, DEVICE_KEY)
    return payloads, {(seq, seq + 1) for seq in FORGED}


def ingest_concurrently(store: Store, payloads: list[bytes], batch: int = 1) -> list[str | None]:
    """Each payload handled once by one of ``WORKERS`` threads (each its own ingestor, as separate workers), in
    batches of up to ``batch`` (one transaction each), retried like the consumer does when the database is busy;
    the stored outcomes' chain flags."""
    work: queue.Queue[bytes] = queue.Queue()
    for payload in payloads:
        work.put(payload)
    reasons: list[str | None] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        ingest = Ingestor(store)
        while True:
            taken: list[tuple[str, bytes]] = []
            while len(taken) < batch:
                try:
                    taken.append((TOPIC, work.get_nowait()))
                except queue.Empty:
                    break
            if not taken:
                return
            for _attempt in range(50):
                try:
                    outcomes = ingest.handle_batch(taken)
                    break
                except DBAPIError as exc:  # busy: the consumer retries the messages
                    error: BaseException = exc
            else:
                with lock:
                    failures.append(error)
                continue
            with lock:
                reasons.extend(o.reason if o.status == "stored" else f"!{o.status}" for o in outcomes)

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads) and failures == []
    return reasons


@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("order", ["in_order", "shuffled"])
def test_concurrent_workers_keep_the_watermark_and_flag_every_broken_link(store: Store, order: str,
                                                                          batch: int) -> None:
    register(store, "unit-1")
    payloads, broken = forged_chain()
    if order == "shuffled":
        random.Random(7).shuffle(payloads)
    reasons = ingest_concurrently(store, payloads, batch)
    assert len(reasons) == EVENTS and not any(r and r.startswith("!") for r in reasons)
    with store.session() as session:
        assert session.scalar(select(Device.last_seq).where(Device.device_id == "unit-1")) == EVENTS
        flags = {seq: flag for seq, flag in session.execute(select(EventRow.seq, EventRow.flag))}
    assert sorted(flags) == list(range(1, EVENTS + 1))
    assert Ingestor(store).flag_gaps(gap_after=0) == []  # no false gap
    for first, second in broken:  # each broken link flagged on whichever of its two events came second
        assert [flags[first], flags[second]].count("broken_chain") == 1, (first, second, order)
    near_a_break = {seq for link in broken for seq in link}
    assert {seq: flag for seq, flag in flags.items() if seq not in near_a_break and flag} == {}


def gap_rows(store: Store) -> list[tuple[int | None, int | None, int, int, float | None]]:
    with store.session() as session:
        return [tuple(row) for row in session.execute(  # type: ignore[misc]
            select(Gap.first_seq, Gap.last_seq, Gap.count, Gap.filled, Gap.filled_at).order_by(Gap.id))]


def test_a_flagged_gap_is_marked_filled_when_a_resend_brings_its_events(store: Store) -> None:
    """Events 4..6 and 9 arrive late, after their holes were flagged (a unit resending after a reconnect): the
    gaps are filled, with when, and no event keeps a gap flag; a hole that stays open keeps its flag."""
    register(store, "unit-1")
    clock = Clock()
    ingest = Ingestor(store, clock=clock)
    payloads = event_payloads(12)
    for seq in (1, 2, 3, 7, 8, 10, 12):
        assert ingest.handle(TOPIC, payloads[seq - 1]).status == "stored"
    clock.advance(60)
    found = ingest.flag_gaps(gap_after=30)  # every hole in one sweep
    assert found == [("unit-1", 4, 6), ("unit-1", 9, 9), ("unit-1", 11, 11)]
    assert ingest.flag_gaps(gap_after=30) == []  # each once
    flagged_at = clock()
    clock.advance(5)
    outcomes = [ingest.handle(TOPIC, payloads[seq - 1]) for seq in (6, 4)]  # out of order, 5 still missing
    assert [(o.status, o.reason) for o in outcomes] == [("stored", None), ("stored", None)]
    assert gap_rows(store) == [(4, 6, 3, 2, None), (9, 9, 1, 0, None), (11, 11, 1, 0, None)]
    clock.advance(5)
    assert [o.status for o in ingest.handle_batch([(TOPIC, payloads[4]), (TOPIC, payloads[8])])] == ["stored"] * 2
    assert ingest.handle(TOPIC, payloads[3]).status == "duplicate"  # sent again: counts once
    assert gap_rows(store) == [(4, 6, 3, 3, flagged_at + 10), (9, 9, 1, 1, flagged_at + 10), (11, 11, 1, 0, None)]
    with store.session() as session:
        flags = dict(session.execute(select(EventRow.seq, EventRow.flag).where(EventRow.flag.is_not(None))).all())
        assert session.scalar(select(Device.last_seq)) == 12
    assert flags == {12: "gap"}  # only where an event is still missing

