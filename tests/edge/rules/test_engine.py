"""The engine over time: kinds together, tamper suppression, order, closing."""

from __future__ import annotations

import pytest

from edge_app.rules.config import RulesConfig, merged_rules
from edge_app.rules.debounce import Transition
from edge_app.rules.engine import EngineState, close_all, evaluate
from edge_app.rules.observation import Observation, Sighting, SpokenKeyword, ViewStats

RULES = RulesConfig.model_validate({})
CANDIDATE = (100.0, 100.0, 300.0, 400.0)
VIEW = ViewStats(120, 50, 1.0, 0.9)
COVERED = ViewStats(4, 2, 0.05, 0.1)


def seated(t: float, **changes: object) -> Observation:
    base: dict[str, object] = dict(people=1, candidate=CANDIDATE, in_zone=True, phones=(), materials=(),
                                   yaw_off=0.0, pitch_off=0.0, lips=0.0, dbfs=-50.0, voice=False, view=VIEW)
    base.update(changes)
    return Observation(t, **base)  # type: ignore[arg-type]


def play(observations: list[Observation], rules: RulesConfig = RULES) -> tuple[list[Transition], EngineState]:
    state = EngineState()
    out: list[Transition] = []
    for obs in observations:
        transitions, state = evaluate(rules, state, obs)
        out.extend(transitions)
    return out, state


def timeline(seconds: float, make, fps: float = 5.0, start: float = 0.0) -> list[Observation]:  # type: ignore[no-untyped-def]
    return [make(round(start + i / fps, 6)) for i in range(int(seconds * fps))]


def test_a_quiet_exam_raises_nothing() -> None:
    transitions, state = play(timeline(120, seated))
    assert transitions == [] and state.active() == {}


def test_absence_starts_and_ends() -> None:
    obs = (timeline(10, seated) + timeline(20, lambda t: seated(t, people=0, candidate=None), start=10)
           + timeline(10, seated, start=30))
    transitions, _ = play(obs)
    assert [(t.kind, t.phase) for t in transitions] == [("absent", "start"), ("absent", "end")]
    start, end = transitions
    assert start.since == pytest.approx(10.0) and start.t == pytest.approx(15.0, abs=0.3)
    assert 30.0 < end.t <= 33.0


def test_several_kinds_run_side_by_side() -> None:
    phone = (Sighting("cell phone", 0.5, (1, 1, 5, 5)),)
    obs = timeline(10, seated) + timeline(20, lambda t: seated(t, people=2, phones=phone), start=10)
    transitions, state = play(obs)
    assert {t.kind for t in transitions if t.phase == "start"} == {"extra_person", "phone"}
    assert set(state.active()) == {"extra_person", "phone"}


def test_a_covered_camera_is_tamper_only() -> None:
    covered = timeline(20, lambda t: Observation(t, people=0, phones=(), materials=(), view=COVERED), start=10)
    transitions, _ = play(timeline(10, seated) + covered + timeline(10, seated, start=30))
    assert [(t.kind, t.phase) for t in transitions] == [("camera_tamper", "start"), ("camera_tamper", "end")]


def test_disabled_kinds_stay_silent() -> None:
    rules = RulesConfig.model_validate({"absent": {"enabled": False}})
    transitions, _ = play(timeline(30, lambda t: seated(t, people=0, candidate=None)), rules)
    assert transitions == []


def test_observations_must_come_in_time_order() -> None:
    _, state = play([seated(5.0)])
    with pytest.raises(ValueError, match="older than the last one"):
        evaluate(RULES, state, seated(4.0))


def test_close_all_ends_every_running_alert() -> None:
    _, state = play(timeline(20, lambda t: seated(t, people=0, candidate=None)))
    transitions, state = close_all(RULES, state, 21.0)
    assert [(t.kind, t.phase, t.t) for t in transitions] == [("absent", "end", 21.0)]
    assert state.active() == {}


def test_a_spoken_keyword_is_one_short_alert_naming_it() -> None:
    heard = {10.0: (SpokenKeyword("seven", 9.8),), 10.4: (SpokenKeyword("answer", 10.3),)}
    obs = timeline(20, lambda t: seated(t, keywords=heard.get(t, ())))
    assert play(obs)[0] == [], "off unless the exam turns it on"
    transitions, state = play(obs, RulesConfig.model_validate({"speech_keyword": {"enabled": True}}))
    assert [(t.kind, t.phase, t.label) for t in transitions] == [("speech_keyword", "start", "seven"),
                                                                 ("speech_keyword", "end", None)]
    start, end = transitions
    assert start.t == pytest.approx(10.0) and 11.0 <= end.t <= 12.0 and state.active() == {}


def test_keywords_off_the_exams_list_raise_nothing() -> None:
    rules = RulesConfig.model_validate({"speech_keyword": {"keywords": ["answer"], "enabled": True}})
    obs = timeline(5, lambda t: seated(t, keywords=(SpokenKeyword("seven", t),)))
    assert play(obs, rules)[0] == []


def test_a_kind_switched_off_while_its_alert_runs_ends_it_at_once() -> None:
    """New rules mid-session (a thresholds command) that disable a running kind: its alert ends at the next
    observation, with an end event, instead of staying open until the session ends."""
    away = timeline(20, lambda t: seated(t, people=0, candidate=None))
    transitions, state = play(away)
    assert [(t.kind, t.phase) for t in transitions] == [("absent", "start")]
    off = merged_rules(RULES, {"absent": {"enabled": False}})
    ended, state = evaluate(off, state, seated(20.0, people=0, candidate=None))
    assert [(t.kind, t.phase, t.alert_id, t.t) for t in ended] == [("absent", "end", "absent-1", 20.0)]
    assert ended[0].since == transitions[0].since and state.active() == {}
    later, state = play_from(off, state, timeline(20, lambda t: seated(t, people=0, candidate=None), start=20.2))
    assert later == []  # off stays off
    again, state = play_from(RULES, state, timeline(20, lambda t: seated(t, people=0, candidate=None), start=40.2))
    assert [(t.kind, t.phase, t.alert_id) for t in again] == [("absent", "start", "absent-2")]
    assert again[0].since >= 40.2  # on again: a fresh vote, not the samples from before it was off


def play_from(rules: RulesConfig, state: EngineState,
              observations: list[Observation]) -> tuple[list[Transition], EngineState]:
    out: list[Transition] = []
    for obs in observations:
        transitions, state = evaluate(rules, state, obs)
        out.extend(transitions)
    return out, state
