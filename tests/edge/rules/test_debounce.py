"""One kind's life cycle: vote, minimum duration, hysteresis, cooldown, updates."""

from __future__ import annotations

import pytest

from edge_app.rules.debounce import KindState, Sample, Timing, Transition, close, step, vote

TIMING = Timing(min_duration=2.0, end_after=1.0, cooldown=5.0, update_every=10.0, window=1.0, on_fraction=0.5)


def run(pattern: list[bool | None], dt: float = 0.2, timing: Timing = TIMING) -> list[Transition]:
    """Feed one sample per ``dt`` seconds (None: not measured) and collect the transitions."""
    state = KindState()
    out = []
    for i, on in enumerate(pattern):
        sample = None if on is None else Sample(on, 0.8 if on else 0.0, (1, 2, 3, 4) if on else None)
        state, transition = step("phone", "critical", timing, state, sample, round(i * dt, 6))
        if transition:
            out.append(transition)
    return out


@pytest.mark.parametrize(
    ("samples", "fraction", "expected"),
    [
        ((), 0.5, None),
        (((0.0, Sample(True)),), 0.5, True),
        (((0.0, Sample(True)), (0.1, Sample(False))), 0.5, True),
        (((0.0, Sample(True)), (0.1, Sample(False)), (0.2, Sample(False))), 0.5, False),
        (((0.0, Sample(False)),), 0.01, False),
    ],
)
def test_vote(samples: tuple[tuple[float, Sample], ...], fraction: float, expected: bool | None) -> None:
    assert vote(samples, fraction) is expected


def test_short_condition_raises_nothing() -> None:
    assert run([True] * 9 + [False] * 20) == []  # 1.8 s < min_duration 2 s


def test_long_condition_is_one_alert_with_start_and_end() -> None:
    transitions = run([False] * 5 + [True] * 50 + [False] * 20)
    assert [t.phase for t in transitions] == ["start", "end"]
    start, end = transitions
    assert start.since == pytest.approx(1.0)  # the condition began at sample 5
    assert start.t == pytest.approx(3.0)  # after min_duration
    assert start.alert_id == end.alert_id == "phone-1"
    assert start.box == (1, 2, 3, 4) and start.confidence == pytest.approx(0.8)
    # the vote turns off once more than half the 1 s window is off, then end_after 1 s
    assert 12.0 <= end.t <= 12.6


def test_flicker_inside_the_window_does_not_end_the_alert() -> None:
    flicker = [True, False] * 40  # a detector that finds the phone on every other frame
    timing = Timing(min_duration=2.0, end_after=1.0, cooldown=5.0, update_every=0, window=3.0, on_fraction=0.3)
    transitions = run(flicker + [False] * 40, timing=timing)
    assert [t.phase for t in transitions] == ["start", "end"]


def test_ten_minutes_of_phone_is_one_alert_with_periodic_updates() -> None:
    transitions = run([True] * 3000)  # 600 s at 5 Hz
    phases = [t.phase for t in transitions]
    assert phases[0] == "start" and set(phases[1:]) == {"update"}
    assert len(phases) == 1 + int((600 - 2.2) // 10)
    assert len({t.alert_id for t in transitions}) == 1


def test_cooldown_holds_back_a_new_alert_then_lets_it_start() -> None:
    on, off = [True] * 15, [False] * 10
    transitions = run(on + off + on + [True] * 30)
    starts = [t for t in transitions if t.phase == "start"]
    ends = [t for t in transitions if t.phase == "end"]
    assert len(starts) == 2 and len(ends) == 1
    assert starts[1].t - ends[0].t >= TIMING.cooldown
    assert starts[1].alert_id == "phone-2"


def test_unmeasured_moments_hold_the_state() -> None:
    transitions = run([True] * 15 + [None] * 100 + [True] * 5)
    assert [t.phase for t in transitions] == ["start", "update"]  # no end while nothing was measured
    # and an off-countdown already running keeps running through unmeasured moments
    transitions = run([True] * 15 + [False] * 3 + [None] * 10)
    assert [t.phase for t in transitions] == ["start", "end"]


def test_zero_update_every_sends_no_updates() -> None:
    timing = Timing(2.0, 1.0, 5.0, 0.0, 1.0, 0.5)
    assert [t.phase for t in run([True] * 500, timing=timing)] == ["start"]


def test_close_ends_a_running_alert_once() -> None:
    state = KindState()
    for i in range(20):
        state, _ = step("absent", "warning", TIMING, state, Sample(True), i * 0.2)
    assert state.alert_id == "absent-1"
    state, ended = close("absent", "warning", state, 4.0)
    assert ended is not None and ended.phase == "end" and ended.t == 4.0
    assert close("absent", "warning", state, 5.0)[1] is None
