"""Alert messages of the loop become signed, chained protocol events in the outbox."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_app.link.events import EventWriter
from edge_app.link.outbox import Outbox, OutboxError
from edge_app.protocol import ChainVerifier, decode_event

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def alert(phase: str, uid: str = "x1", **extra: object) -> dict:
    return {"type": "alert", "id": uid, "kind": "phone", "phase": phase, "t": 1.0, "since": 0.5,
            "severity": "critical", "confidence": 0.8, "box": [64, 48, 128, 96], "evidence": None, **extra}


def test_an_alert_life_becomes_three_linked_events(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    writer = EventWriter("unit-1", KEY, outbox, (640, 480))
    start_id = writer.write(alert("start", evidence={"sha256": "ab" * 32}), now_ms=1000)
    assert writer.write({"type": "status", "state": "camera_stalled"}) is None
    writer.write(alert("update"), now_ms=2000)
    writer.write(alert("end"), now_ms=3000)
    rows = outbox.pending()
    assert [topic for _, topic, _ in rows] == ["invigil/v1/dev/unit-1/event"] * 3
    events = [decode_event(payload, KEY.public_key()) for _, _, payload in rows]
    assert [(e.seq, e.phase, e.alert_id) for e in events] == [(1, "start", None), (2, "update", start_id),
                                                                (3, "end", start_id)]
    assert events[0].event_id == start_id and events[0].evidence is not None
    assert events[0].box is not None and abs(events[0].box[0] - 0.1) < 0.002
    verifier = ChainVerifier()
    assert [verifier.check(e, p) for e, (_, _, p) in zip(events, rows, strict=True)] == [None, None, None]


def test_an_end_without_its_start_is_not_sent(tmp_path: Path) -> None:
    writer = EventWriter("unit-1", KEY, Outbox(tmp_path / "o.db"), (640, 480))
    assert writer.write(alert("end", uid="from-a-previous-run")) is None


def test_a_keyword_alert_carries_its_keyword_on_start_only(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    writer = EventWriter("unit-1", KEY, outbox, (640, 480))
    spoken = {"kind": "speech_keyword", "severity": "warning", "box": None, "keyword": "seven"}
    writer.write(alert("start", **spoken), now_ms=1000)
    writer.write(alert("end", **spoken), now_ms=2000)
    events = [decode_event(payload, KEY.public_key()) for _, _, payload in outbox.pending()]
    assert [(e.kind, e.phase, e.keyword) for e in events] == [("speech_keyword", "start", "seven"),
                                                               ("speech_keyword", "end", None)]


def test_alerts_refused_on_a_full_disk_are_reported_first_once_space_is_back(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    writer = EventWriter("unit-1", KEY, outbox, (640, 480))
    writer.write(alert("start", uid="a0"), now_ms=1_000)
    pages = outbox._db.execute("PRAGMA page_count").fetchone()[0]  # the test's full disk
    outbox._db.execute(f"PRAGMA max_page_count = {pages}")
    refused = 0
    for n in range(1, 200):  # the free room of the last page fills, then every alert is refused
        try:
            writer.write(alert("start", uid=f"a{n}"), now_ms=1_000 + n * 1000)
        except OutboxError as exc:
            assert "disk full" in str(exc)
            refused += 1
    assert refused > 100
    with pytest.raises(OutboxError, match="still cannot store"):
        writer.report_refused()
    outbox._db.execute("PRAGMA max_page_count = 1000000")  # space is back
    after = writer.write(alert("start", uid="after"), now_ms=500_000)
    rows = outbox.pending(limit=1000)
    report, last = (decode_event(p, KEY.public_key()) for _, _, p in rows[-2:])
    assert (report.kind, report.refused_reason, report.seq + 1) == ("events_refused", "disk_full", last.seq)
    assert report.refused == (refused, 201 - refused, 200) and last.event_id == after  # s since 1970
    verifier = ChainVerifier()
    assert {verifier.check(decode_event(p, None), p) for _, _, p in rows} == {None}
    assert outbox.refused() is None
