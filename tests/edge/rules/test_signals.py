"""Per-kind conditions on single observations."""

from __future__ import annotations

import pytest

from edge_app.rules.config import RulesConfig
from edge_app.rules.observation import Observation, Sighting, SpokenKeyword, ViewStats
from edge_app.rules.signals import CONDITIONS

RULES = RulesConfig.model_validate({})
CANDIDATE = (100.0, 100.0, 300.0, 400.0)
PHONE = Sighting("cell phone", 0.4, (10, 10, 20, 30))
WEAK_PHONE = Sighting("cell phone", 0.1, (10, 10, 20, 30))
BOOK = Sighting("book", 0.6, (0, 0, 50, 50))
SCREEN = Sighting("tv", 0.6, (0, 0, 50, 50))
NORMAL_VIEW = ViewStats(brightness=120, contrast=50, sharpness=1.0, view_match=0.9)


@pytest.mark.parametrize(
    ("kind", "obs", "active", "expected"),
    [
        ("absent", Observation(0), False, None),
        ("absent", Observation(0, people=0), False, True),
        ("absent", Observation(0, people=1, candidate=CANDIDATE), False, False),
        ("absent", Observation(0, people=1, candidate=None), False, True),  # someone else, not the candidate
        ("left_zone", Observation(0, people=1, candidate=CANDIDATE, in_zone=False), False, True),
        ("left_zone", Observation(0, people=1, candidate=CANDIDATE, in_zone=True), False, False),
        ("left_zone", Observation(0, people=0), False, None),
        ("extra_person", Observation(0, people=2, candidate=CANDIDATE), False, True),
        ("extra_person", Observation(0, people=1, candidate=CANDIDATE), False, False),
        ("phone", Observation(0, phones=(PHONE,)), False, True),
        ("phone", Observation(0, phones=(WEAK_PHONE,)), False, False),
        ("phone", Observation(0, phones=()), False, False),
        ("phone", Observation(0), False, None),
        ("material", Observation(0, materials=(BOOK,)), False, True),
        ("material", Observation(0, materials=(SCREEN,)), False, True),
        ("gaze_away", Observation(0, yaw_off=40, pitch_off=0), False, True),
        ("gaze_away", Observation(0, yaw_off=-40, pitch_off=0), False, True),
        ("gaze_away", Observation(0, yaw_off=30, pitch_off=0), False, False),
        ("gaze_away", Observation(0, yaw_off=30, pitch_off=0), True, True),  # hysteresis holds it
        ("gaze_away", Observation(0, yaw_off=20, pitch_off=0), True, False),
        ("gaze_away", Observation(0, yaw_off=0, pitch_off=25), False, True),  # looking down
        ("gaze_away", Observation(0, yaw_off=0, pitch_off=-25), False, False),  # up is not "down"
        ("talking", Observation(0, voice=True), False, True),
        ("talking", Observation(0, lips=0.2, voice=False), False, True),
        ("talking", Observation(0, lips=0.01, voice=False), False, False),
        ("talking", Observation(0), False, None),
        ("loud_audio", Observation(0, dbfs=-5), False, True),
        ("loud_audio", Observation(0, dbfs=-11), False, False),
        ("loud_audio", Observation(0, dbfs=-11), True, True),
        ("speech_keyword", Observation(0), False, None),  # no keyword spotting
        ("speech_keyword", Observation(0, keywords=()), False, False),
        ("speech_keyword", Observation(0, keywords=(SpokenKeyword("seven", 0.0),)), False, True),
        ("speech_keyword", Observation(0, keywords=(SpokenKeyword("banana", 0.0),)), False, False),  # not listed
        ("identity_mismatch", Observation(0, identity=0.4), False, True),
        ("identity_mismatch", Observation(0, identity=0.7), False, False),
        ("identity_mismatch", Observation(0), False, None),
        ("camera_tamper", Observation(0, view=NORMAL_VIEW), False, False),
        ("camera_tamper", Observation(0, view=ViewStats(5, 3, 0.1, 0.1)), False, True),  # covered
        ("camera_tamper", Observation(0, view=ViewStats(120, 50, 0.1, 0.9)), False, True),  # blurred
        ("camera_tamper", Observation(0, view=ViewStats(120, 50, 1.0, 0.2)), False, True),  # moved
    ],
)
def test_condition(kind: str, obs: Observation, active: bool, expected: bool | None) -> None:
    sample = CONDITIONS[kind](obs, RULES.rule(kind), active)
    assert (None if sample is None else sample.on) is expected


def test_screens_can_be_left_out_of_material() -> None:
    rules = RulesConfig.model_validate({"material": {"screens": False}})
    sample = CONDITIONS["material"](Observation(0, materials=(SCREEN,)), rules.material, False)
    assert sample is not None and not sample.on


def test_voice_is_ignored_when_audio_is_off() -> None:
    rules = RulesConfig.model_validate({"talking": {"use_audio": False}})
    assert CONDITIONS["talking"](Observation(0, voice=True), rules.talking, False) is None


def test_phone_sample_carries_the_best_box_and_score() -> None:
    strong = Sighting("cell phone", 0.7, (1, 2, 3, 4))
    sample = CONDITIONS["phone"](Observation(0, phones=(PHONE, strong)), RULES.phone, False)
    assert sample is not None and sample.score == 0.7 and sample.box == (1, 2, 3, 4)


def test_keyword_sample_names_the_first_listed_keyword() -> None:
    heard = (SpokenKeyword("banana", 0.1), SpokenKeyword("answer", 0.5), SpokenKeyword("seven", 0.3))
    sample = CONDITIONS["speech_keyword"](Observation(1, keywords=heard), RULES.speech_keyword, False)
    assert sample is not None and sample.on and sample.label == "seven" and sample.box is None
