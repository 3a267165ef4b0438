"""Scoring raised alerts against truth."""

from __future__ import annotations

import pytest

from tools.evaluate.score import Raised, Truth, match, raised_alerts, score

MIN = {"phone": 2.0, "absent": 5.0}


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
        ([Truth("phone", 10, 20)], [Raised("phone", 12, 10.2, 22)], 1),
        ([Truth("phone", 10, 20)], [Raised("absent", 12, 10.2, 22)], 0),  # wrong kind
        ([Truth("phone", 10, 20)], [Raised("phone", 32, 30, 40)], 0),  # no overlap
        ([Truth("phone", 10, 20)], [Raised("phone", 12, 10, 15), Raised("phone", 17, 16, 21)], 1),  # once each
        ([Truth("phone", 10, 20), Truth("phone", 30, 40)], [Raised("phone", 12, 10, 45)], 1),
    ],
)
def test_match(truth: list[Truth], raised: list[Raised], matched: int) -> None:
    assert len(match(truth, raised)) == matched


def test_on_time_late_missed_and_unexpected() -> None:
    truth = [Truth("phone", 10, 20), Truth("absent", 30, 45), Truth("phone", 50, 60)]
    raised = [Raised("phone", 12.9, 10.3, 21), Raised("absent", 36.5, 30.2, 46), Raised("absent", 70, 66, 80)]
    result = score(truth, raised, MIN)
    assert result["kinds"]["phone"] == {"truth": 2, "raised": 1, "matched": 1, "precision": 1.0, "recall": 0.5,
                                        "delay_s": {"median": 2.9, "max": 2.9}, "allowed_delay_s": 3.0}
    assert result["kinds"]["absent"]["precision"] == 0.5
    assert result["failures"] == ["late absent: raised 6.5 s after 30.0 s (allowed 6.0 s)",
                                  "missed phone 50.0-60.0 s"]
    assert result["unexpected"] == ["unexpected absent at 70.0 s (since 66.0 s)"]


def test_nothing_true_and_nothing_raised_is_clean() -> None:
    assert score([], [], MIN) == {"kinds": {}, "failures": [], "unexpected": []}
