"""State -> pattern, the pattern over time, presses -> actions, and loop messages -> state."""

from __future__ import annotations

import pytest

from edge_app.indicators import (
    PATTERNS,
    Action,
    Press,
    State,
    StateTracker,
    action_for,
    classify_press,
    output_at,
    pattern_for,
)

RED, GREEN, BLUE, OFF = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (0.0, 0.0, 0.0)


@pytest.mark.parametrize(("state", "colour", "on", "off", "beeps"), [
    (State.BOOTING, BLUE, 0.5, 0.5, 0),
    (State.NEEDS_PLACEMENT, (1.0, 0.5, 0.0), 1.0, 1.0, 1),
    (State.READY, GREEN, 1.0, 0.0, 1),
    (State.IN_EXAM, (0.0, 0.2, 0.0), 1.0, 0.0, 0),
    (State.ALERT, RED, 1.0, 0.0, 0),
    (State.OFFLINE, (1.0, 0.0, 1.0), 0.2, 1.8, 0),
    (State.UPDATING, (0.0, 1.0, 1.0), 0.25, 0.25, 0),
    (State.FAULT, RED, 0.1, 0.1, 3),
])
def test_each_state_has_its_documented_pattern(state: State, colour: tuple[float, float, float], on: float,
                                               off: float, beeps: int) -> None:
    pattern = pattern_for(state)
    assert (pattern.colour, pattern.on_time, pattern.off_time, pattern.beeps) == (colour, on, off, beeps)


def test_every_state_has_a_pattern_and_states_tell_apart() -> None:
    assert set(PATTERNS) == set(State)
    looks = {(p.colour, p.on_time, p.off_time) for p in PATTERNS.values()}
    assert len(looks) == len(State)  # no two states look the same on the LED
    assert all(PATTERNS[s].beeps == 0 for s in (State.IN_EXAM, State.ALERT))  # silent in an exam


@pytest.mark.parametrize(("elapsed", "colour", "beep"), [
    (0.0, RED, True), (0.05, RED, True), (0.15, OFF, True), (0.35, OFF, True), (0.65, RED, False),
    (1.05, RED, True), (2.25, RED, True), (2.75, OFF, False), (3.05, RED, False), (3.15, OFF, False),
])
def test_the_fault_pattern_blinks_fast_and_beeps_three_times(elapsed: float, colour: tuple[float, float, float],
                                                             beep: bool) -> None:
    assert output_at(pattern_for(State.FAULT), elapsed) == (colour, beep)


def test_a_steady_pattern_stays_lit() -> None:
    assert {output_at(pattern_for(State.ALERT), t)[0] for t in (0.0, 0.5, 1.0, 7.3, 100.0)} == {RED}


@pytest.mark.parametrize(("seconds", "press"), [
    (0.01, None), (0.05, Press.SHORT), (1.0, Press.SHORT), (2.99, Press.SHORT), (3.0, Press.LONG), (9.0, Press.LONG),
])
def test_presses_are_classified_by_how_long_they_were_held(seconds: float, press: Press | None) -> None:
    assert classify_press(seconds, 0.05, 3.0) is press


@pytest.mark.parametrize("state", list(State))
def test_a_short_press_shows_the_status_and_a_long_press_never_touches_an_exam(state: State) -> None:
    assert action_for(state, Press.SHORT) is Action.SHOW_STATUS
    expected = Action.PLACEMENT_CHECK if state in (State.NEEDS_PLACEMENT, State.READY, State.OFFLINE) \
        else Action.NONE
    assert action_for(state, Press.LONG) is expected


def test_a_connected_unit_goes_from_booting_to_exam_and_back() -> None:
    up = [True]
    tracker = StateTracker(connected=lambda: up[0])
    assert tracker.state() is State.BOOTING
    assert tracker.update({"type": "calibration", "usable": False}) is State.NEEDS_PLACEMENT
    assert tracker.update({"type": "calibration", "usable": True}) is State.READY
    up[0] = False
    assert tracker.state() is State.OFFLINE
    assert tracker.update({"type": "status", "state": "session_started", "session": "s1"}) is State.IN_EXAM
    assert tracker.update({"type": "alert", "id": "a1", "phase": "start"}) is State.ALERT
    assert tracker.update({"type": "alert", "id": "a1", "phase": "update"}) is State.ALERT
    assert tracker.update({"type": "alert", "id": "a1", "phase": "end"}) is State.IN_EXAM
    assert tracker.update({"type": "status", "state": "camera_stalled"}) is State.FAULT
    assert tracker.update({"type": "status", "state": "camera_recovered"}) is State.IN_EXAM
    tracker.updating = True
    assert tracker.state() is State.UPDATING
    tracker.updating = False
    up[0] = True
    assert tracker.update({"type": "status", "state": "session_stopped", "session": "s1"}) is State.READY


def test_a_standalone_unit_is_in_its_exam_once_placed() -> None:
    tracker = StateTracker(connected=None)
    assert tracker.update({"type": "calibration", "usable": False}) is State.NEEDS_PLACEMENT
    assert tracker.update({"type": "calibration", "usable": True}) is State.IN_EXAM


def test_updating_shows_while_an_update_runs_and_outranks_all_but_a_fault() -> None:
    running = [True]
    tracker = StateTracker(connected=lambda: True, updating=lambda: running[0])
    tracker.update({"type": "calibration", "usable": True})
    assert tracker.state() is State.UPDATING
    tracker.update({"type": "status", "state": "camera_stalled"})
    assert tracker.state() is State.FAULT
    fresh = StateTracker(connected=lambda: True, updating=lambda: False)
    fresh.update({"type": "calibration", "usable": True})
    assert fresh.state() is State.READY


def test_refused_credentials_show_the_fault_not_offline_until_accepted_again() -> None:
    up = [False]
    tracker = StateTracker(connected=lambda: up[0])
    tracker.update({"type": "calibration", "usable": True})
    assert tracker.state() is State.OFFLINE  # the bridge is out of reach: waiting may fix that
    refused = {"type": "status", "state": "credentials_refused", "reason": "Not authorized"}
    assert tracker.update(refused) is State.FAULT  # it refuses this unit: waiting will not
    assert tracker.update({"type": "status", "state": "session_started", "session": "s1"}) is State.FAULT
    assert tracker.update({"type": "status", "state": "session_stopped", "session": "s1"}) is State.FAULT
    up[0] = True
    assert tracker.update({"type": "status", "state": "credentials_accepted"}) is State.READY
