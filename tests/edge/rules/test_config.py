"""Rule settings: presets, overrides, and errors that name the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edge_app.rules.config import KIND_RULES, RulesConfig
from edge_app.rules.presets import PRESETS


def test_standard_is_the_default_and_covers_every_kind() -> None:
    config = RulesConfig.model_validate({})
    assert config.preset == "standard"
    for kind in KIND_RULES:
        assert config.rule(kind).enabled == (kind != "speech_keyword"), "keywords: on only when an exam asks"
        assert config.rule(kind).min_duration == PRESETS["standard"][kind]["min_duration"]


@pytest.mark.parametrize("kind", sorted(KIND_RULES))
def test_strict_raises_sooner_and_relaxed_later(kind: str) -> None:
    strict, standard, relaxed = (RulesConfig.model_validate({"preset": p}).rule(kind)
                                 for p in ("strict", "standard", "relaxed"))
    assert strict.min_duration <= standard.min_duration <= relaxed.min_duration
    assert strict.min_duration < relaxed.min_duration or standard.min_duration == 0  # speech_keyword: at once


@pytest.mark.parametrize(
    ("field", "stricter_is"),
    [("phone.min_score", "lower"), ("gaze_away.yaw_deg", "lower"), ("loud_audio.dbfs", "lower"),
     ("camera_tamper.min_view_match", "higher"), ("camera_tamper.min_brightness", "higher")],
)
def test_preset_thresholds_move_towards_sensitivity(field: str, stricter_is: str) -> None:
    kind, name = field.split(".")
    values = [getattr(RulesConfig.model_validate({"preset": p}).rule(kind), name) for p in ("strict", "relaxed")]
    assert values[0] < values[1] if stricter_is == "lower" else values[0] > values[1]


def test_an_override_changes_only_its_field() -> None:
    config = RulesConfig.model_validate({"preset": "relaxed", "phone": {"min_score": 0.5, "enabled": False}})
    assert config.phone.min_score == 0.5 and not config.phone.enabled
    assert config.phone.min_duration == PRESETS["relaxed"]["phone"]["min_duration"]
    assert config.absent == RulesConfig.model_validate({"preset": "relaxed"}).absent


@pytest.mark.parametrize(
    ("data", "location", "message"),
    [
        ({"preset": "lax"}, ("preset",), "strict"),
        ({"phone": {"min_scor": 0.2}}, ("phone", "min_scor"), "Extra inputs"),
        ({"phone": {"min_score": 1.5}}, ("phone", "min_score"), "less than 1"),
        ({"absent": {"min_duration": -1}}, ("absent", "min_duration"), "greater than or equal to 0"),
        ({"talking": "off"}, ("talking",), "valid dictionary"),
        ({"talk": {}}, ("talk",), "Extra inputs"),
        ({"gaze_away": {"severity": "urgent"}}, ("gaze_away", "severity"), "info"),
        ({"speech_keyword": {"keywords": ["Seven"]}}, ("speech_keyword", "keywords"), "lowercase words"),
        ({"speech_keyword": {"keywords": ["7"]}}, ("speech_keyword", "keywords"), "lowercase words"),
        ({"speech_keyword": {"keywords": ["what was the answer"]}}, ("speech_keyword", "keywords"), "18"),
        ({"speech_keyword": {"keywords": []}}, ("speech_keyword", "keywords"), "at least 1"),
        ({"speech_keyword": {"thresholds": {"ten": 0}}}, ("speech_keyword", "thresholds"), "> 0"),
    ],
)
def test_bad_settings_name_the_field(data: dict, location: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        RulesConfig.model_validate(data)
    errors = info.value.errors()
    assert len(errors) == 1
    assert errors[0]["loc"][: len(location)] == location
    assert message in errors[0]["msg"]
