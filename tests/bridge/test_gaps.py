"""Gaps as staff and proctors see them, on SQLite and PostgreSQL: the listing (range, reason, events lost,
flagged and filled), its cursor, and ``python -m cloud_bridge gaps``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloud_bridge.__main__ import main
from cloud_bridge.gaps import describe, device_exams, device_gaps
from cloud_bridge.ingest import Ingestor
from cloud_bridge.store import Store
from edge_app.protocol import Event, chain_hash, encode_event, new_event_id
from tests.bridge.parts import DEVICE_KEY, Clock, event_payloads, register

TOPIC = "invigil/v1/dev/unit-1/event"
REFUSED = (268, 1_795_438_300, 1_795_438_390)


def with_gaps(store: Store, clock: Clock) -> None:
    """unit-1's events 1-2, 5-6 and 8 arrive and the holes 3-4 and 7 are flagged; then 3 and 7 arrive late (7
    fills its gap) and an events_refused report (268 alerts, disk full) comes as event 9."""
    register(store, "unit-1")
    ingest = Ingestor(store, clock=clock)
    payloads = event_payloads(8)
    for seq in (1, 2, 5, 6, 8):
        assert ingest.handle(TOPIC, payloads[seq - 1]).status == "stored"
    clock.advance(60)
    assert ingest.flag_gaps(30) == [("unit-1", 3, 4), ("unit-1", 7, 7)]
    clock.advance(10)
    for seq in (3, 7):
        assert ingest.handle(TOPIC, payloads[seq - 1]).status == "stored"
    report = Event(event_id=new_event_id(), device_id="unit-1", seq=9, time_ms=1_795_438_400_000,
                   kind="events_refused", phase="start", severity="warning", confidence=1.0,
                   prev_hash=chain_hash(payloads[7]), refused=REFUSED, refused_reason="disk_full")
    assert ingest.handle(TOPIC, encode_event(report, DEVICE_KEY)).reason == "disk_full"


def test_each_gap_is_listed_with_its_range_reason_loss_and_times(store: Store, clock: Clock) -> None:
    start = clock()
    with_gaps(store, clock)
    missing, filled, refused = device_gaps(store, "unit-1")
    assert {k: missing[k] for k in ("reason", "first_seq", "last_seq", "count", "filled", "lost", "filled_at")} == \
        {"reason": "missing", "first_seq": 3, "last_seq": 4, "count": 2, "filled": 1, "lost": 1, "filled_at": None}
    assert missing["found_at"] == start + 60
    assert (filled["first_seq"], filled["last_seq"], filled["lost"], filled["filled_at"]) == (7, 7, 0, start + 70)
    assert {k: refused[k] for k in ("reason", "count", "lost", "first_at", "last_at", "first_seq", "filled_at")} == \
        {"reason": "disk_full", "count": 268, "lost": 268, "first_at": REFUSED[1], "last_at": REFUSED[2],
         "first_seq": None, "filled_at": None}
    assert describe(missing) == f"#{missing['id']:<6} events 3..4 missing (2); flagged 2027-01-15T08:01:00Z; " \
        "lost 1 (1 arrived late)"
    assert describe(filled).endswith("events 7..7 missing (1); flagged 2027-01-15T08:01:00Z; filled "
                                     "2027-01-15T08:01:10Z")
    assert describe(refused).endswith("268 alerts refused by the unit (disk_full) from 2026-11-23T12:51:40Z to "
                                      "2026-11-23T12:53:10Z; flagged 2027-01-15T08:01:10Z; lost 268")


def test_the_listing_pages_by_its_cursor(store: Store, clock: Clock) -> None:
    with_gaps(store, clock)
    every = device_gaps(store, "unit-1")
    first = device_gaps(store, "unit-1", limit=2)
    rest = device_gaps(store, "unit-1", after=first[-1]["id"], limit=2)
    assert first + rest == every and len(every) == 3
    assert device_gaps(store, "unit-1", after=every[-1]["id"]) == []
    assert device_gaps(store, "unit-2") == []
    with pytest.raises(ValueError, match="limit must be 1 to 500"):
        device_gaps(store, "unit-1", limit=0)
    assert device_exams(store, "unit-1") == set()  # never paired


def test_the_command_line_lists_a_units_gaps(store: Store, clock: Clock, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    with_gaps(store, clock)
    config = tmp_path / "bridge.toml"
    config.write_text(f'database_url = "{store.url}"\nkey_file = "bridge.key"\n[mqtt]\nhost = "127.0.0.1"\n')
    assert main(["gaps", "--config", str(config), "--device", "unit-1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and "events 3..4 missing (2)" in lines[0] and "lost 1 (1 arrived late)" in lines[0]
    assert "events 7..7 missing (1)" in lines[1] and "; filled 20" in lines[1]
    assert "268 alerts refused by the unit (disk_full)" in lines[2] and "lost 268" in lines[2]
    assert lines[3] == "3 gaps of unit-1, 269 events lost"
    assert main(["gaps", "--config", str(config), "--device", "unit-1", "--json", "--limit", "1"]) == 0
    shown = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert shown == device_gaps(store, "unit-1", limit=1)
    assert main(["gaps", "--config", str(config), "--device", "unit-9"]) == 2
    assert "no device unit-9 is registered" in capsys.readouterr().err
    assert main(["gaps", "--config", str(config), "--device", "unit-1", "--limit", "501"]) == 2
    assert "limit must be 1 to 500" in capsys.readouterr().err
