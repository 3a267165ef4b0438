"""Scoring raised alerts against truth."""

from __future__ import annotations

import pytest

from tools.evaluate.score import Raised, Truth, match, raised_alerts, score, totals


def test_start_and_end_messages_pair_into_alerts() -> None:
    messages = [
        {"type": "calibration"},
        {"type": "alert", "id": "a", "kind": "phone", "phase": "start", "t": 12.0, "since": 10.0},
        {"type": "alert", "id": "a", "kind": "phone", "phase": "update", "t": 20.0, "since": 10.0},
        {"type": "alert", "id": "a", "kind": "phone", "phase": "end", "t": 25.0, "since": 10.0},
        {"type": "alert", "id": "b", "kind": "absent", "phase": "start", "t": 40.0, "since": 35.0},
    ]
    assert raised_alerts(messages, 50.0) == [Raised("phone", 12.0, 10.0, 25.0), Raised("absent", 40.0, 35.0, 50.0)]


@pytest.mark.parametrize(
    ("truth", "raised", "matched"),
    [
        ([Truth("phone", 10, 20, 3.0)], [Raised("phone", 12, 10.2, 22)], 1),
        ([Truth("phone", 10, 20, 3.0)], [Raised("absent", 12, 10.2, 22)], 0),  # wrong kind
        ([Truth("phone", 10, 20, 3.0)], [Raised("phone", 32, 30, 40)], 0),  # no overlap
        ([Truth("phone", 10, 20, 3.0)], [Raised("phone", 12, 10, 15), Raised("phone", 17, 16, 21)], 1),  # once each
        ([Truth("phone", 10, 20, 3.0), Truth("phone", 30, 40, 3.0)], [Raised("phone", 12, 10, 45)], 1),
    ],
)
def test_match(truth: list[Truth], raised: list[Raised], matched: int) -> None:
    assert len(match(truth, raised)) == matched


def test_on_time_late_missed_and_false() -> None:
    truth = [Truth("phone", 10, 20, 3.0), Truth("absent", 30, 45, 6.0), Truth("phone", 50, 60, 3.0)]
    raised = [Raised("phone", 12.9, 10.3, 21), Raised("absent", 36.5, 30.2, 46), Raised("absent", 70, 66, 80)]
    result = score(truth, raised)
    assert result["kinds"]["phone"] == {"truth": 2, "raised": 1, "matched": 1, "on_time": 1, "precision": 1.0,
                                        "recall": 0.5, "delay_s": {"median": 2.9, "max": 2.9}}
    assert result["kinds"]["absent"]["precision"] == 0.5
    assert result["failures"] == ["late absent: raised 6.5 s after 30.0 s (allowed 6.0 s)",
                                  "missed phone 50.0-60.0 s"]
    assert result["false_alerts"] == ["false absent at 70.0 s (since 66.0 s)"]


@pytest.mark.parametrize(("allowed", "late"), [(2.0, True), (2.9, False), (10.0, False)])
def test_each_truth_event_carries_its_own_allowed_delay(allowed: float, late: bool) -> None:
    result = score([Truth("phone", 10, 20, allowed)], [Raised("phone", 12.9, 10.3, 21)])
    assert bool(result["failures"]) == late
    assert result["kinds"]["phone"]["on_time"] == (0 if late else 1)


def test_nothing_true_and_nothing_raised_is_clean() -> None:
    assert score([], []) == {"kinds": {}, "failures": [], "false_alerts": []}


def test_totals_sum_kinds_over_scenarios_with_false_alerts_and_precision() -> None:
    a = score([Truth("phone", 10, 20, 3.0)], [Raised("phone", 12, 10, 21), Raised("phone", 40, 39, 45)])
    b = score([Truth("phone", 5, 15, 3.0)], [Raised("phone", 9, 5, 16), Raised("talking", 30, 25, 35)])
    kinds = totals([a, b])
    assert kinds["phone"] == {"truth": 2, "raised": 3, "matched": 2, "on_time": 1, "false": 1, "precision": 0.667,
                              "recall": 1.0, "max_delay_s": 4.0}
    assert kinds["talking"] == {"truth": 0, "raised": 1, "matched": 0, "on_time": 0, "false": 1, "precision": 0.0,
                                "recall": None, "max_delay_s": None}
