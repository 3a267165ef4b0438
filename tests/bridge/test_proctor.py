"""The proctor feed on SQLite and PostgreSQL: paired events become alerts once, device_offline per outage."""

from __future__ import annotations

import json
import threading

import pytest

from cloud_bridge.ingest import Ingestor
from cloud_bridge.proctor import ProctorFeed
from cloud_bridge.sessions import Sessions, SessionView
from cloud_bridge.store import Store
from cloud_bridge.store.models import ProctorAlert
from edge_app.protocol import Event, new_event_id, proctor_topic
from tests.bridge.parts import PHOTO, T0, Clock, Published, count, event_payloads, register

TOPIC = proctor_topic("math-101")


@pytest.fixture
def published() -> Published:
    return Published()


@pytest.fixture
def feed(store: Store, published: Published, clock: Clock) -> ProctorFeed:
    return ProctorFeed(store, published, clock)


def paired(sessions: Sessions, device_id: str = "unit-1", exam: str = "math-101", candidate: str = "cand-7"
           ) -> SessionView:
    view = sessions.create(exam, candidate, PHOTO)
    return sessions.pair(device_id, view.pairing_code or "")


def event(device_id: str = "unit-1", phase: str = "start", alert_id: str | None = None) -> Event:
    return Event(event_id=new_event_id(), device_id=device_id, seq=1, time_ms=1_800_000_000_123, kind="phone",
                 phase=phase, severity="critical", confidence=0.87, prev_hash="", evidence="A" * 22 if phase ==
                 "start" else None, alert_id=alert_id)


def test_a_paired_event_becomes_one_alert(store: Store, sessions: Sessions, feed: ProctorFeed,
                                          published: Published) -> None:
    view = paired(sessions)
    start = event()
    message = feed.on_event(start, "gap")
    assert message is not None
    assert {k: v for k, v in message.items() if k != "id"} == {
        "v": 1, "exam": "math-101", "session": view.session_id, "candidate": "cand-7", "device": "unit-1",
        "kind": "phone", "phase": "start", "severity": "critical", "confidence": 0.87, "t": 1_800_000_000_123,
        "alert": start.event_id, "event": start.event_id, "evidence": "A" * 22, "flag": "gap",
        "keyword": None}
    assert feed.on_event(start, "gap") is None  # the same event id again: recorded once
    assert count(store, ProctorAlert) == 1
    assert [(t, json.loads(p), q, r) for t, p, q, r in published.messages] == [(TOPIC, message, 2, False)]
    assert feed.alerts("math-101") == [message]


def test_a_keyword_alert_names_its_keyword(sessions: Sessions, feed: ProctorFeed) -> None:
    paired(sessions)
    spoken = Event(**{**event().__dict__, "kind": "speech_keyword", "severity": "warning", "keyword": "seven"})
    message = feed.on_event(spoken, None)
    assert message is not None and (message["kind"], message["keyword"]) == ("speech_keyword", "seven")
    assert feed.alerts("math-101") == [message]


def test_update_and_end_events_name_their_start(sessions: Sessions, feed: ProctorFeed) -> None:
    paired(sessions)
    start = event()
    feed.on_event(start, None)
    end = feed.on_event(event(phase="end", alert_id=start.event_id), None)
    assert end is not None and (end["phase"], end["alert"], end["evidence"]) == ("end", start.event_id, None)


def test_events_of_unpaired_devices_are_not_alerts(store: Store, sessions: Sessions, feed: ProctorFeed,
                                                   published: Published) -> None:
    waiting = sessions.create("math-101", "cand-7", PHOTO)
    assert feed.on_event(event("unit-1"), None) is None  # registered, but no session is paired with it
    view = sessions.pair("unit-1", waiting.pairing_code or "")
    sessions.end(view.session_id)
    assert feed.on_event(event("unit-1"), None) is None  # its session ended
    assert feed.on_event(event("unit-9"), None) is None  # unknown device
    assert count(store, ProctorAlert) == 0 and published.messages == []


def test_alerts_go_to_their_own_exam(sessions: Sessions, feed: ProctorFeed) -> None:
    paired(sessions, "unit-1", "math-101")
    paired(sessions, "unit-2", "physics-2", "cand-8")
    first = feed.on_event(event("unit-1"), None)
    second = feed.on_event(event("unit-2"), None)
    third = feed.on_event(event("unit-1"), None)
    assert first is not None and second is not None and third is not None
    assert feed.alerts("math-101") == [first, third]
    assert feed.alerts("math-101", after_id=first["id"]) == [third]
    assert feed.alerts("math-101", limit=1) == [first]
    assert feed.alerts("physics-2") == [second] and second["candidate"] == "cand-8"


def test_a_failing_republish_keeps_the_alert(store: Store, sessions: Sessions, clock: Clock) -> None:
    def broken(topic: str, payload: bytes, qos: int, retain: bool) -> None:
        raise OSError("broker gone")

    paired(sessions)
    feed = ProctorFeed(store, broken, clock)
    assert feed.on_event(event(), None) is not None
    assert len(feed.alerts("math-101")) == 1


def test_device_offline_once_per_outage(store: Store, sessions: Sessions, feed: ProctorFeed, clock: Clock,
                                        published: Published) -> None:
    view = paired(sessions)
    clock.advance(10)
    started = feed.device_offline("unit-1", "last will")
    assert started is not None
    assert (started["kind"], started["phase"], started["severity"], started["event"], started["t"]) == (
        "device_offline", "start", "critical", None, int((T0 + 10) * 1000))
    assert started["session"] == view.session_id
    assert feed.device_offline("unit-1", "silent") is None  # the same outage
    clock.advance(5)
    ended = feed.device_back("unit-1")
    assert ended is not None and (ended["phase"], ended["alert"]) == ("end", started["alert"])
    assert feed.device_back("unit-1") is None  # no outage open
    again = feed.device_offline("unit-1", "last will")
    assert again is not None and again["alert"] != started["alert"]  # a new outage, a new alert
    assert [m["phase"] for m in feed.alerts("math-101")] == ["start", "end", "start"]
    assert len(published.on(TOPIC)) == 3


def test_device_offline_only_for_a_paired_device(store: Store, sessions: Sessions, feed: ProctorFeed) -> None:
    sessions.create("math-101", "cand-7", PHOTO)
    assert feed.device_offline("unit-1", "last will") is None
    assert feed.device_offline("unit-9", "last will") is None
    assert feed.device_back("unit-1") is None
    assert count(store, ProctorAlert) == 0


def test_waiters_wake_on_a_change(sessions: Sessions, feed: ProctorFeed) -> None:
    paired(sessions)
    seen = feed.version
    woke: list[int] = []
    waiter = threading.Thread(target=lambda: woke.append(feed.wait(seen, 10.0)))
    waiter.start()
    feed.on_event(event(), None)
    waiter.join(10.0)
    assert woke == [seen + 1]
    assert feed.wait(seen + 1, 0.01) == seen + 1  # nothing new: returns at its timeout with the same version


def test_proctors_hear_of_lost_events_when_found_and_when_they_arrive_after_all(
        store: Store, sessions: Sessions, feed: ProctorFeed, clock: Clock, published: Published) -> None:
    register(store, "unit-1")
    register(store, "unit-2")
    view = paired(sessions)
    paired(sessions, "unit-2", exam="art-202", candidate="cand-9")
    ingest, payloads = Ingestor(store, clock=clock, gap_notices=feed), event_payloads(6)

    def send(seq: int) -> str:
        return ingest.handle("invigil/v1/dev/unit-1/event", payloads[seq - 1], feed.record_batch).status

    for seq in (1, 2, 5, 6):
        assert send(seq) == "stored"
    clock.advance(10)
    assert ingest.flag_gaps(30) == []  # a hole younger than gap_after: perhaps still on its way
    clock.advance(25)
    assert ingest.flag_gaps(30) == [("unit-1", 3, 4)]
    missing = [m for m in feed.alerts("math-101") if m["kind"] == "events_missing"]
    assert [(m["phase"], m["severity"], m["flag"], m["event"], m["session"], m["t"]) for m in missing] == [
        ("start", "warning", "gap", None, view.session_id, int((T0 + 35) * 1000))]
    assert ingest.flag_gaps(30) == []  # told once
    assert send(3) == "stored"  # 3 of 3..4: still lost
    assert [m["kind"] for m in feed.alerts("math-101")][-1] == "phone"
    clock.advance(5)
    assert send(4) == "stored"  # 4: nothing lost after all
    ended = feed.alerts("math-101")[-1]
    assert (ended["kind"], ended["phase"], ended["alert"], ended["flag"]) == (
        "events_missing", "end", missing[0]["alert"], None)
    on_topic = [json.loads(payload) for _topic, payload, _qos, _retain in published.on(TOPIC)]
    assert [(m["kind"], m["phase"]) for m in on_topic if m["kind"] == "events_missing"] == [
        ("events_missing", "start"), ("events_missing", "end")]
    assert feed.alerts("art-202") == []  # another unit's exam hears nothing of it


def test_a_gap_of_an_unpaired_unit_reaches_no_proctor(store: Store, sessions: Sessions, feed: ProctorFeed,
                                                      clock: Clock, published: Published) -> None:
    register(store, "unit-1")
    ingest, payloads = Ingestor(store, clock=clock, gap_notices=feed), event_payloads(3)
    for seq in (1, 3):
        ingest.handle("invigil/v1/dev/unit-1/event", payloads[seq - 1], feed.record_batch)
    clock.advance(60)
    assert ingest.flag_gaps(30) == [("unit-1", 2, 2)]
    paired(sessions)  # paired after the gap was found: its filling has no start to end
    assert ingest.handle("invigil/v1/dev/unit-1/event", payloads[1], feed.record_batch).status == "stored"
    assert [m["kind"] for m in feed.alerts("math-101")] == ["phone"]
    assert count(store, ProctorAlert) == 1
