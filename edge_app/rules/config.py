"""Rule settings per alert kind, with the strict/standard/relaxed presets underneath.

A config names a preset and overrides only what it changes::

    [rules]
    preset = "standard"
    phone = { min_score = 0.3, severity = "critical" }
    talking = { enabled = false }

Each kind is validated in full after the merge, so an error names the field (``rules.phone.min_score``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edge_app.protocol import MAX_KEYWORD
from edge_app.rules.debounce import Timing
from edge_app.rules.presets import PRESETS, Preset

Severity = Literal["info", "warning", "critical"]
KEYWORD = re.compile(r"^[a-z][a-z']*( [a-z][a-z']*){0,3}$")  # one to four lowercase words


class AlertRule(BaseModel):
    """What every alert kind has: on/off, severity and timing."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="raise this kind at all")
    severity: Severity = Field(..., description="how urgent the proctor should treat it")
    min_duration: float = Field(..., ge=0, le=600,
                                description="seconds the condition must last before the alert starts")
    end_after: float = Field(..., ge=0, le=600, description="seconds the condition must be gone before the alert ends")
    cooldown: float = Field(..., ge=0, le=3600, description="seconds after an end before the same kind can start again")
    update_every: float = Field(
        60.0, ge=0, le=3600, description="seconds between update messages while active (0: none)"
    )
    window: float = Field(..., gt=0, le=60, description="seconds of samples the on/off vote looks at")
    on_fraction: float = Field(..., gt=0, le=1, description="share of samples in the window that must be on")

    def timing(self) -> Timing:
        return Timing(self.min_duration, self.end_after, self.cooldown, self.update_every, self.window,
                      self.on_fraction)


class AbsentRule(AlertRule):
    """No candidate in view."""


class LeftZoneRule(AlertRule):
    """The candidate is in view but outside the calibrated seat zone."""

    margin: float = Field(0.25, ge=0, le=2, description="how far (share of the zone's size) the candidate's "
                          "centre may leave the zone before it counts as outside")


class ExtraPersonRule(AlertRule):
    """More people than the candidate."""

    max_people: int = Field(1, ge=1, le=10, description="people allowed in view (the candidate is one)")


class PhoneRule(AlertRule):
    """A cell phone in view (full frame or a crop around the hands and desk)."""

    min_score: float = Field(..., gt=0, lt=1, description="detector score a phone needs")


class MaterialRule(AlertRule):
    """Books and paper, or a screen other than the expected PC screen."""

    min_score: float = Field(..., gt=0, lt=1, description="detector score a book or screen needs")
    screens: bool = Field(True, description="count screens other than the calibrated PC screen")


class GazeRule(AlertRule):
    """Head turned away or down beyond the calibrated baseline."""

    yaw_deg: float = Field(..., gt=0, le=90, description="yaw away from the baseline that counts as away")
    down_deg: float = Field(..., gt=0, le=90, description="pitch below the baseline that counts as looking down")
    release: float = Field(0.7, gt=0, le=1, description="an active alert holds until the angle falls below "
                           "this share of the threshold (hysteresis)")


class TalkingRule(AlertRule):
    """Sustained speech or lip movement."""

    lips: float = Field(..., gt=0, le=1, description="lip movement (spread of mouth opening) that counts")
    use_audio: bool = Field(True, description="voice activity on the microphone counts")


class LoudAudioRule(AlertRule):
    """Sound level above a threshold."""

    dbfs: float = Field(..., ge=-90, le=0, description="level in dBFS that counts as loud")
    release_db: float = Field(3.0, ge=0, le=30, description="an active alert holds until the level is this "
                              "many dB below the threshold")


class SpeechKeywordRule(AlertRule):
    """A keyword of the exam's list spoken aloud (the alert carries the keyword and its time, no transcript)."""

    keywords: list[str] = Field(..., min_length=1, max_length=64, description="words and short phrases that "
                                "count (lowercase; numbers spelled out)")
    thresholds: dict[str, float] = Field(default_factory=dict, description="keyword -> detection threshold of "
                                         "the spotter (lower: more hits and more false ones)")
    default_threshold: float = Field(1e-10, gt=0, le=1e30, description="threshold of keywords not in thresholds")

    @field_validator("keywords")
    @classmethod
    def _words(cls, words: list[str]) -> list[str]:
        for word in words:
            if not KEYWORD.fullmatch(word) or len(word) > MAX_KEYWORD:
                raise ValueError(f"keyword {word!r} must be one to four lowercase words of a-z and ', at most "
                                 f"{MAX_KEYWORD} characters (an event carries it)")
        return words

    @field_validator("thresholds")
    @classmethod
    def _positive(cls, thresholds: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in thresholds.items() if not 0 < v <= 1e30}
        if bad:
            raise ValueError(f"thresholds must be > 0 and <= 1e30: {bad}")
        return thresholds


class IdentityRule(AlertRule):
    """The candidate's face does not match the enrolled photo."""

    min_similarity: float = Field(0.6, gt=0, lt=1, description="cosine similarity a match needs "
                                  "(edge_app/vision/identity.py documents the threshold)")


class TamperRule(AlertRule):
    """Camera covered, dark, blurred or moved away from the calibrated view."""

    min_brightness: float = Field(..., ge=0, le=255, description="mean luma below this is covered/dark")
    min_contrast: float = Field(..., ge=0, le=128, description="luma spread below this is covered/blank")
    min_sharpness: float = Field(..., ge=0, le=1, description="edge energy relative to the reference below this "
                                 "is blurred")
    min_view_match: float = Field(..., ge=0, le=1, description="similarity to the reference view below this "
                                  "is moved")


KIND_RULES: dict[str, type[AlertRule]] = {
    "camera_tamper": TamperRule,
    "absent": AbsentRule,
    "left_zone": LeftZoneRule,
    "extra_person": ExtraPersonRule,
    "phone": PhoneRule,
    "material": MaterialRule,
    "gaze_away": GazeRule,
    "talking": TalkingRule,
    "loud_audio": LoudAudioRule,
    "speech_keyword": SpeechKeywordRule,
    "identity_mismatch": IdentityRule,
}


class RulesConfig(BaseModel):
    """Alert rules: a sensitivity preset plus per-kind overrides."""

    model_config = ConfigDict(extra="forbid")

    preset: Preset = Field("standard", description="sensitivity: strict, standard or relaxed")
    camera_tamper: TamperRule
    absent: AbsentRule
    left_zone: LeftZoneRule
    extra_person: ExtraPersonRule
    phone: PhoneRule
    material: MaterialRule
    gaze_away: GazeRule
    talking: TalkingRule
    loud_audio: LoudAudioRule
    speech_keyword: SpeechKeywordRule
    identity_mismatch: IdentityRule

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        preset = data.get("preset", "standard")
        # An unknown preset is reported by the field's own validation; merge onto standard meanwhile.
        defaults = PRESETS.get(preset, PRESETS["standard"]) if isinstance(preset, str) else PRESETS["standard"]
        merged: dict[str, Any] = {"preset": preset}
        for kind in KIND_RULES:
            override = data.get(kind, {})
            if not isinstance(override, dict):
                merged[kind] = override  # field validation reports the wrong type
                continue
            merged[kind] = {**defaults[kind], **override}
        merged.update({k: v for k, v in data.items() if k not in merged})  # unknown keys: extra="forbid"
        return merged

    def rule(self, kind: str) -> AlertRule:
        rule: AlertRule = getattr(self, kind)
        return rule


def merged_rules(base: RulesConfig, override: Mapping[str, Any]) -> RulesConfig:
    """``override`` (a rules section, as ``session_start`` and ``thresholds`` carry it) over ``base``; a new
    preset replaces every kind it does not name. ValidationError (a ValueError) naming each bad field."""
    if "preset" in override:
        return RulesConfig.model_validate(dict(override))
    merged = base.model_dump()
    for key, value in override.items():
        merged[key] = {**merged.get(key, {}), **value} if isinstance(value, dict) else value
    return RulesConfig.model_validate(merged)


def override_problems(override: Any) -> list[str]:
    """Why a unit would refuse ``override`` as a rules section (``field: reason`` each); none when it would
    take it. Checked over the standard rules: every field is checked on its own, so an override good over
    them is good over any unit's rules."""
    if not isinstance(override, Mapping):
        return ["rules must be an object (the unit's rules section)"]
    try:
        merged_rules(RulesConfig.model_validate({}), override)
    except ValidationError as exc:
        return [f"{'.'.join(str(p) for p in e['loc']) or '(rules)'}: {e['msg']}" for e in exc.errors()]
    return []
