"""A session's timeline from the store, on SQLite and PostgreSQL: alerts grouped by alert id, open ones running to
the end, offline stretches, events lost in unfilled gaps, PC events and placement; and its risk score."""

from __future__ import annotations

import json

from cloud_bridge.pc_events import PcEvents, issue_token
from cloud_bridge.risk import risk_score
from cloud_bridge.store import Store
from cloud_bridge.store.models import Device, Gap
from cloud_bridge.timeline import build
from tests.bridge.parts import T0
from tests.bridge.review_parts import paired_session


def test_alerts_offline_gaps_pc_events_and_placement_make_the_timeline(store: Store) -> None:
    scene = paired_session(store)
    phone = scene.unit.alert(T0 + 10, T0 + 50, "phone", "critical", 0.9)
    talking = scene.unit.alert(T0 + 100, None, "talking", "warning", 0.5)  # never ends
    scene.unit.event(T0 + 20, "phone", "update", "critical", 0.95, alert_id=phone)  # raises its confidence
    scene.clock.now = T0 + 200
    scene.services.feed.device_offline("unit-1", "silent")
    scene.clock.now = T0 + 260
    scene.services.feed.device_back("unit-1")
    with store.session() as session, session.begin():
        session.add(Gap(device_id="unit-1", reason="missing", count=6, first_seq=90, last_seq=95, event_id="x",
                        found_at=T0 + 150, filled=2))
        session.add(Gap(device_id="unit-1", reason="disk_full", count=3, event_id="y", found_at=T0 + 160))
        session.add(Gap(device_id="unit-1", reason="missing", count=50, event_id="z", found_at=T0 - 5000))  # before
        device = session.get(Device, "unit-1")
        assert device is not None
        device.stats, device.stats_at = json.dumps({"placement": "hands,screen"}), T0 + 5
    token = issue_token(store, scene.session_id)
    PcEvents(store).post(scene.session_id, token, {"events": [
        {"kind": "focus_lost", "t": int((T0 + 30) * 1000)}, {"kind": "second_monitor", "t": int((T0 + 40) * 1000),
                                                            "detail": {"screens": 2}}]})
    scene.clock.now = T0 + 400
    scene.services.sessions.end(scene.session_id)

    timeline = build(store, scene.session_id)
    assert timeline is not None
    assert (timeline.start, timeline.end) == (T0, T0 + 400)
    assert [(a.alert_id, a.kind, a.start - T0, None if a.end is None else a.end - T0, a.confidence)
            for a in timeline.alerts] == [(phone, "phone", 10, 50, 0.95), (talking, "talking", 100, None, 0.5)]
    assert timeline.alerts[1].duration(timeline.end) == 300  # open: runs to the end of the session
    assert [(s - T0, None if e is None else e - T0) for s, e in timeline.offline] == [(200, 260)]
    assert timeline.lost_events == 4 + 3
    assert timeline.placement_usable is False
    assert [(e.kind, e.detail) for e in timeline.pc_events] == [
        ("focus_lost", None), ("second_monitor", {"screens": 2})]

    score = risk_score(timeline.risk_timeline())
    alerts, health, pc = score.dimensions
    assert round(alerts.measure, 3) == round(40 * 1.0 * 1.0 * 0.95 + 300 * 0.4 * 0.6 * 0.5, 3)  # 38 + 36
    assert round(health.measure, 4) == round((60 / 300 + 7 / 20 + 1.0) / 3, 4)
    assert pc.measure == 1 + 3
    assert score.score == round(60 * 74 / 120 + 25 * health.measure + 15 * 0.4)


def test_an_open_session_runs_to_now_and_an_open_offline_stretch_with_it(store: Store) -> None:
    scene = paired_session(store)
    scene.clock.now = T0 + 30
    scene.services.feed.device_offline("unit-1", "will")
    timeline = build(store, scene.session_id, now=T0 + 90)
    assert timeline is not None and timeline.end == T0 + 90 and timeline.state == "paired"
    assert [(s - T0, e) for s, e in timeline.offline] == [(30, None)]
    assert timeline.placement_usable is None and timeline.lost_events == 0 and timeline.alerts == []
    assert risk_score(timeline.risk_timeline()).dimensions[1].measure == 60 / 300 / 3


def test_no_such_session_has_no_timeline(store: Store) -> None:
    assert build(store, "nope") is None
