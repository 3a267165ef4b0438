"""The risk score on constructed timelines with answers worked out by hand (docs/review.md's arithmetic)."""

from __future__ import annotations

import pytest

from cloud_bridge.risk import AlertSpan, RiskWeights, Timeline, risk_score


def timeline(**fields: object) -> Timeline:
    return Timeline(**{"start": 0.0, "end": 3600.0, **fields})  # type: ignore[arg-type]


CASES = [
    # name, timeline, score, points per dimension (alerts, health, pc)
    ("nothing happened", timeline(), 0, (0.0, 0.0, 0.0)),
    ("a minute of phone, critical, sure", timeline(alerts=[AlertSpan("phone", "critical", 1.0, 100, 160)]),
     30, (30.0, 0.0, 0.0)),  # 60 weighted s of 120 -> half of 60
    ("a long phone alert saturates; offline a minute; never placed", timeline(
        alerts=[AlertSpan("phone", "critical", 0.9, 0, 200)], offline=[(500, 560)], placement_usable=False),
     70, (60.0, 10.0, 0.0)),  # 180 weighted s -> 60; (60/300 + 0 + 1) / 3 of 25 = 10
    ("a glance counts its minimum", timeline(alerts=[AlertSpan("gaze_away", "warning", 0.5, 10, 10)]),
     0, (0.09, 0.0, 0.0)),  # 2 s x 0.3 x 0.6 x 0.5 = 0.18 -> 0.09 points
    ("an alert still open runs to the end", timeline(end=160.0, alerts=[AlertSpan("phone", "warning", 1.0, 100,
                                                                                  None)]),
     18, (18.0, 0.0, 0.0)),  # 60 s x 0.6 = 36 -> 18
    ("the PC's events", timeline(pc_events=[("focus_lost", 1), ("focus_lost", 2), ("focus_lost", 3),
                                            ("second_monitor", 4), ("answer_submitted", 5)]),
     9, (0.0, 0.0, 9.0)),  # 3 + 3 + 0 = 6 of 10 -> 9 of 15
    ("events lost in gaps", timeline(lost_events=10, placement_usable=True), 4, (0.0, 25 / 6, 0.0)),
    ("an alert longer than the cap", timeline(alerts=[AlertSpan("extra_person", "critical", 1.0, 0, 1000)]),
     60, (60.0, 0.0, 0.0)),  # capped at 300 s, saturates
    ("a kind the weights do not list", timeline(alerts=[AlertSpan("new_kind", "critical", 1.0, 0, 40)]),
     10, (10.0, 0.0, 0.0)),  # 40 x 0.5 = 20 -> 10
    ("device_offline counts only under health", timeline(
        alerts=[AlertSpan("device_offline", "critical", 1.0, 0, 300)], offline=[(0, 300)]),
     8, (0.0, 25 / 3, 0.0)),
    ("the worked example of docs/review.md", timeline(
        alerts=[AlertSpan("phone", "critical", 0.9, 0, 40), AlertSpan("talking", "warning", 0.5, 100, 200)],
        offline=[(500, 560)], placement_usable=True,
        pc_events=[("focus_lost", 1), ("focus_lost", 2), ("second_monitor", 3)]),
     33, (24.0, 25 / 15, 7.5)),
]


@pytest.mark.parametrize(("name", "line", "score", "points"), CASES, ids=[c[0] for c in CASES])
def test_known_answers(name: str, line: Timeline, score: int, points: tuple[float, float, float]) -> None:
    result = risk_score(line)
    assert result.score == score
    assert [d.name for d in result.dimensions] == ["alerts", "health", "pc"]
    assert [d.points for d in result.dimensions] == pytest.approx(points)


def test_everything_at_once_stays_at_most_100() -> None:
    line = timeline(alerts=[AlertSpan("phone", "critical", 1.0, 0, 3600)], offline=[(0, 3600)], lost_events=99,
                    placement_usable=False, pc_events=[("second_monitor", 1)] * 10)
    assert risk_score(line).score == 100


def test_the_breakdown_says_what_it_counted() -> None:
    result = risk_score(timeline(alerts=[AlertSpan("phone", "critical", 1.0, 0, 60),
                                         AlertSpan("talking", "warning", 0.5, 0, 100)], lost_events=3))
    alerts, health, pc = result.dimensions
    assert alerts.detail == "72 weighted alert seconds (phone 60, talking 12) of 120 for full points"
    assert health.detail == "0 s offline (of 300), 3 events lost in gaps (of 20), placement not reported"
    assert pc.detail == "no PC event"
    assert result.as_dict()["dimensions"][0] == {"name": "alerts", "points": 36.0, "most": 60.0, "measure": 72.0,
                                                 "detail": alerts.detail}


def test_weights_come_from_the_config_and_refuse_unknown_fields() -> None:
    heavy = RiskWeights(kinds={"gaze_away": 2.0}, alerts_full=10.0)
    line = timeline(alerts=[AlertSpan("gaze_away", "critical", 1.0, 0, 5)])
    assert risk_score(line, heavy).score == 60  # 10 weighted s of 10
    assert risk_score(line).score == 1  # 1.5 weighted s of 120 -> 0.75 points, rounded
    with pytest.raises(ValueError, match="extra"):
        RiskWeights.model_validate({"alert_full": 1})
