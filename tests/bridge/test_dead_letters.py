"""Dead letters on SQLite and PostgreSQL: payloads capped with their size and hash, a flooding unit sampled
while every message is counted, other units and valid events untouched."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from sqlalchemy import select

from cloud_bridge.dead_letters import DeadLetters, source_of
from cloud_bridge.ingest import Ingestor
from cloud_bridge.store import Store
from cloud_bridge.store.models import DeadLetter, DeadLetterTally, EventRow
from tests.bridge.parts import Clock, count, event_payloads, register

TOPIC = "invigil/v1/dev/unit-1/event"
GARBAGE = os.urandom(500_000)  # 500 KB that is not an event


def letters(store: Store) -> list[DeadLetter]:
    with store.session() as session:
        return list(session.scalars(select(DeadLetter).order_by(DeadLetter.id)))


def tallies(store: Store) -> dict[tuple[str, str], tuple[int, int, int]]:
    with store.session() as session:
        return {(t.source, t.reason): (t.count, t.kept, t.bytes) for t in session.scalars(select(DeadLetterTally))}


def test_a_big_payload_keeps_its_first_bytes_with_the_size_and_hash_of_the_whole(store: Store) -> None:
    register(store, "unit-1")
    ingest = Ingestor(store, dead_letters=DeadLetters(store, max_payload_bytes=1000))
    assert ingest.handle(TOPIC, GARBAGE).reason == "oversized"
    small = b'{"v":1,"not":"an event"}'
    assert ingest.handle(TOPIC, small).reason == "malformed"
    big, whole = letters(store)
    assert (bytes(big.payload), big.size, big.sha256) == (GARBAGE[:1000], 500_000, hashlib.sha256(GARBAGE).hexdigest())
    assert (bytes(whole.payload), whole.size) == (small, len(small))  # under the cap: kept whole


def test_a_flooding_unit_is_sampled_and_counted_while_others_keep_every_letter(store: Store) -> None:
    register(store, "unit-1")
    clock = Clock()
    ingest = Ingestor(store, clock, DeadLetters(store, clock, keep_per_second=2.0, keep_burst=10))
    for _ in range(60):
        assert ingest.handle(TOPIC, GARBAGE).status == "dead_letter"
    for _ in range(3):  # another source meanwhile: every one kept
        ingest.handle("invigil/v1/dev/unit-2/event", b"\x00")
    assert ingest.handle(TOPIC, event_payloads(1)[0]).status == "stored"  # the flooder's real event goes through
    clock.advance(5)  # ten more tokens
    for _ in range(30):
        ingest.handle(TOPIC, GARBAGE)
    assert tallies(store) == {("unit-1", "oversized"): (90, 20, 90 * 500_000), ("unit-2", "unknown_device"): (3, 3, 3)}
    assert [(source_of(row.topic), row.reason) for row in letters(store)].count(("unit-1", "oversized")) == 20
    assert count(store, EventRow) == 1


def test_a_flood_of_500_kb_garbage_grows_the_database_by_little(tmp_path: Path) -> None:
    path = tmp_path / "bridge.db"
    store = Store(f"sqlite:///{path}")
    try:
        register(store, "unit-1")
        ingest = Ingestor(store)  # the default knobs: 4 KiB kept, 100 at once, then 1 a second
        before, started = _size(store, path), time.monotonic()
        for _ in range(300):  # 150 MB of garbage
            ingest.handle(TOPIC, GARBAGE)
        elapsed, grown = time.monotonic() - started, _size(store, path) - before
        assert tallies(store)[("unit-1", "oversized")][0] == 300
        assert len(letters(store)) <= 100 + elapsed + 1
        assert grown < 1_000_000, f"grew {grown} bytes"
        print(f"300 x 500 KB garbage in {elapsed:.2f} s: the database grew {grown / 1e6:.2f} MB")
    finally:
        store.close()


def _size(store: Store, path: Path) -> int:
    """The database file's size with everything in it (the write-ahead log checkpointed and emptied)."""
    with store.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


def test_a_topic_with_a_nul_is_kept_with_the_nul_written_out(store: Store) -> None:
    """PostgreSQL's text columns refuse NUL: the dead letter failed with a DataError, which the consumer takes for a
    database away and retries for ever (found by the dispatch fuzzer)."""
    assert DeadLetters(store).add("invigil/\x00/x", b"payload", "bad_topic", "a topic with \x00 in it")
    (kept,) = letters(store)
    assert (kept.topic, kept.detail) == ("invigil/\\x00/x", "a topic with \\x00 in it")
