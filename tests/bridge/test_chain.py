"""The chain check under concurrency, on SQLite and PostgreSQL: several workers ingesting one unit's events in
and out of order move the watermark to the last event, flag every broken link and raise no false gap."""

from __future__ import annotations

import queue
import random
import threading

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from cloud_bridge.ingest import Ingestor
from cloud_bridge.store import Store
from cloud_bridge.store.models import Device, EventRow
from edge_app.protocol import Event, chain_hash, encode_event, new_event_id
from tests.bridge.parts import DEVICE_KEY, event_payloads, register

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


def ingest_concurrently(store: Store, payloads: list[bytes]) -> list[str | None]:
    """Each payload handled once by one of ``WORKERS`` threads (each its own ingestor, as separate workers),
    retried like the consumer does when the database is busy; the stored outcomes' chain flags."""
    work: queue.Queue[bytes] = queue.Queue()
    for payload in payloads:
        work.put(payload)
    reasons: list[str | None] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        ingest = Ingestor(store)
        while True:
            try:
                payload = work.get_nowait()
            except queue.Empty:
                return
            for _attempt in range(50):
                try:
                    outcome = ingest.handle(TOPIC, payload)
                    break
                except DBAPIError as exc:  # busy: the consumer retries the message
                    error: BaseException = exc
            else:
                with lock:
                    failures.append(error)
                continue
            with lock:
                reasons.append(outcome.reason if outcome.status == "stored" else f"!{outcome.status}")

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads) and failures == []
    return reasons


@pytest.mark.parametrize("order", ["in_order", "shuffled"])
def test_concurrent_workers_keep_the_watermark_and_flag_every_broken_link(store: Store, order: str) -> None:
    register(store, "unit-1")
    payloads, broken = forged_chain()
    if order == "shuffled":
        random.Random(7).shuffle(payloads)
    reasons = ingest_concurrently(store, payloads)
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
