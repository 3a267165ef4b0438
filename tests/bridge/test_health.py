"""Device health on SQLite and PostgreSQL: births, last wills, heartbeats, and device_offline by will or silence."""

from __future__ import annotations

import json

import pytest

from cloud_bridge.health import Health
from cloud_bridge.proctor import ProctorFeed
from cloud_bridge.sessions import Sessions, SessionView
from cloud_bridge.store import Store
from cloud_bridge.store.models import Device, ProctorAlert
from tests.bridge.parts import PHOTO, T0, Clock, Published, count, register

STATS = {"d": "unit-1", "fps": 4.5, "queue": 0, "camera": "ok"}


@pytest.fixture(autouse=True)
def devices(store: Store) -> None:
    register(store, "unit-1")
    register(store, "unit-2")


@pytest.fixture
def feed(store: Store, clock: Clock) -> ProctorFeed:
    return ProctorFeed(store, Published(), clock)


@pytest.fixture
def health(store: Store, feed: ProctorFeed, clock: Clock) -> Health:
    return Health(store, feed, offline_after=30.0, clock=clock)


def paired(sessions: Sessions, device_id: str = "unit-1") -> SessionView:
    view = sessions.create("math-101", f"cand-{device_id}", PHOTO)
    return sessions.pair(device_id, view.pairing_code or "")


def device(store: Store, device_id: str = "unit-1") -> Device:
    with store.session() as session:
        row = session.get(Device, device_id)
        assert row is not None
        return row


def offline_phases(feed: ProctorFeed) -> list[str]:
    return [a["phase"] for a in feed.alerts("math-101") if a["kind"] == "device_offline"]


def test_status_is_recorded_with_its_time(store: Store, health: Health, clock: Clock) -> None:
    assert health.status("unit-1", "online")
    row = device(store)
    assert (row.status, row.status_at, row.last_seen) == ("online", T0, T0)
    clock.advance(10)
    assert health.status("unit-1", "online")  # the same state again: its time stays
    assert device(store).status_at == T0 and device(store).last_seen == T0 + 10
    clock.advance(10)
    assert health.status("unit-1", "offline")
    row = device(store)
    assert (row.status, row.status_at, row.last_seen) == ("offline", T0 + 20, T0 + 10)
    assert not health.status("unit-9", "online")  # not registered


def test_stats_are_kept_and_mean_online(store: Store, health: Health, clock: Clock) -> None:
    health.status("unit-1", "offline")
    clock.advance(3)
    assert health.stats("unit-1", STATS)
    row = device(store)
    assert json.loads(row.stats or "") == STATS
    assert (row.stats_at, row.last_seen, row.status, row.status_at) == (T0 + 3, T0 + 3, "online", T0 + 3)
    assert not health.stats("unit-9", STATS)


def test_a_last_will_raises_device_offline_once_and_the_birth_ends_it(sessions: Sessions, feed: ProctorFeed,
                                                                     health: Health, clock: Clock) -> None:
    paired(sessions)
    health.status("unit-1", "online")
    health.status("unit-1", "offline")
    clock.advance(4.9)
    health.status("unit-1", "offline")  # the retained will again (a bridge restart): the same outage
    assert health.sweep() == [] and offline_phases(feed) == []  # within the grace: maybe a broker restart
    clock.advance(0.2)
    assert health.sweep() == ["unit-1"]
    assert health.sweep() == []
    assert offline_phases(feed) == ["start"]
    health.status("unit-1", "online")
    assert offline_phases(feed) == ["start", "end"]


def test_a_unit_back_within_the_grace_raises_nothing(sessions: Sessions, feed: ProctorFeed, health: Health,
                                                     clock: Clock) -> None:
    paired(sessions)
    health.status("unit-1", "offline")  # a retained will re-delivered after a broker restart
    clock.advance(2)
    health.status("unit-1", "online")
    clock.advance(60)
    health.stats("unit-1", STATS)
    assert health.sweep() == [] and offline_phases(feed) == []


def test_a_heartbeat_ends_the_outage_too(sessions: Sessions, feed: ProctorFeed, health: Health,
                                        clock: Clock) -> None:
    paired(sessions)
    health.status("unit-1", "offline")
    clock.advance(10)
    assert health.sweep() == ["unit-1"]
    health.stats("unit-1", STATS)
    health.stats("unit-1", STATS)
    assert offline_phases(feed) == ["start", "end"]


def test_silence_raises_device_offline_once_per_outage(sessions: Sessions, feed: ProctorFeed, health: Health,
                                                       clock: Clock) -> None:
    paired(sessions)  # paired at T0, never heard from since
    clock.advance(30)
    assert health.sweep() == []  # exactly offline_after: not yet
    clock.advance(0.5)
    assert health.sweep() == ["unit-1"]
    clock.advance(60)
    assert health.sweep() == []  # the same outage
    assert offline_phases(feed) == ["start"]
    health.stats("unit-1", STATS)
    assert offline_phases(feed) == ["start", "end"]
    clock.advance(29)
    assert health.sweep() == []  # heard from 29 s ago
    clock.advance(2)
    assert health.sweep() == ["unit-1"]
    assert offline_phases(feed) == ["start", "end", "start"]


def test_the_sweep_counts_from_the_last_message(sessions: Sessions, health: Health, clock: Clock) -> None:
    clock.advance(-1000)
    health.status("unit-1", "online")  # seen long before the pairing
    clock.advance(1000)
    paired(sessions)
    clock.advance(20)
    assert health.sweep() == []  # paired 20 s ago: the old last_seen does not count
    health.stats("unit-1", STATS)
    clock.advance(25)
    assert health.sweep() == []
    clock.advance(10)
    assert health.sweep() == ["unit-1"]


def test_the_sweep_leaves_unpaired_and_ended_sessions_alone(store: Store, sessions: Sessions, health: Health,
                                                            clock: Clock) -> None:
    sessions.create("math-101", "cand-waiting", PHOTO)
    view = paired(sessions, "unit-2")
    sessions.end(view.session_id)
    health.status("unit-1", "online")
    clock.advance(3600)
    assert health.sweep() == []
    assert count(store, ProctorAlert) == 0


def test_a_will_then_silence_is_one_outage(sessions: Sessions, feed: ProctorFeed, health: Health,
                                           clock: Clock) -> None:
    paired(sessions)
    health.status("unit-1", "offline")
    clock.advance(3600)
    assert health.sweep() == ["unit-1"]
    assert health.sweep() == []
    assert offline_phases(feed) == ["start"]


def test_exam_view_lists_sessions_with_their_device_health(sessions: Sessions, health: Health) -> None:
    waiting = sessions.create("math-101", "cand-waiting", PHOTO)
    view = paired(sessions)
    health.stats("unit-1", STATS)
    health.status("unit-1", "offline")
    rows = health.exam_view("math-101")
    assert [r["session"] for r in rows] == [waiting.session_id, view.session_id]
    assert rows[0] == {"session": waiting.session_id, "candidate": "cand-waiting", "state": "waiting",
                       "device": None, "device_status": None, "offline": False, "last_seen": None, "stats": None}
    assert (rows[1]["state"], rows[1]["device"], rows[1]["device_status"], rows[1]["offline"],
            rows[1]["stats"]) == ("paired", "unit-1", "offline", False, STATS)  # no alarm within the grace
    assert health.exam_view("other") == []
