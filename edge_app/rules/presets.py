"""Sensitivity presets: ``standard`` as tuned on the scenarios, ``strict`` and ``relaxed`` derived from it.

``strict`` raises sooner (durations x0.6) at more sensitive thresholds; ``relaxed`` waits longer (x1.6)
at less sensitive ones. A config overrides any field of any kind on top of its preset.
"""

from __future__ import annotations

from typing import Any, Literal

Preset = Literal["strict", "standard", "relaxed"]

# speech_keyword: the default per-exam list and the spotter's thresholds. Each threshold is the most lenient
# of 1e20 .. 1e-40 that raised no false hit of its keyword on the espeak-ng tuning sentences
# (tools/bench/speech_tune.py); real recordings are the check. Single letters, "two" and "eight" sound like
# common words ("a", "be", "see", "to", "ate"): every threshold that finds them fires on ordinary speech, so
# theirs are strict enough that they are rarely reported.
KEYWORDS = ("a", "b", "c", "d", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
            "answer", "question", "option")
THRESHOLDS: dict[str, float] = {  # python -m tools.bench.speech_tune
    "a": 1e10, "b": 1e20, "c": 1e10, "d": 1e10, "one": 1.0, "two": 1e10, "three": 1e10, "four": 1e-10,
    "five": 1e-10, "six": 1e-20, "seven": 1e-20, "eight": 1e5, "nine": 1e-10, "ten": 1e-5, "answer": 1e-15,
    "question": 1e-40, "option": 1e-20,
}

STANDARD: dict[str, dict[str, Any]] = {
    "camera_tamper": dict(severity="critical", min_duration=2, end_after=2, cooldown=10, window=1.0,
                          on_fraction=0.6, min_brightness=20, min_contrast=10, min_sharpness=0.25,
                          min_view_match=0.5),
    "absent": dict(severity="warning", min_duration=5, end_after=2, cooldown=5, window=1.5, on_fraction=0.6),
    "left_zone": dict(severity="warning", min_duration=5, end_after=2, cooldown=5, window=1.5, on_fraction=0.6),
    "extra_person": dict(severity="critical", min_duration=3, end_after=3, cooldown=10, window=2.0,
                         on_fraction=0.6),
    "phone": dict(severity="critical", min_duration=2, end_after=4, cooldown=10, window=3.0, on_fraction=0.3,
                  min_score=0.35),
    "material": dict(severity="warning", min_duration=4, end_after=4, cooldown=15, window=3.0, on_fraction=0.4,
                     min_score=0.35),
    "gaze_away": dict(severity="warning", min_duration=5, end_after=2, cooldown=10, window=1.5, on_fraction=0.6,
                      yaw_deg=35, down_deg=20),
    "talking": dict(severity="warning", min_duration=5, end_after=3, cooldown=10, window=3.0, on_fraction=0.4,
                    lips=0.08),
    "loud_audio": dict(severity="info", min_duration=1, end_after=1, cooldown=5, window=0.5, on_fraction=0.5,
                       dbfs=-10),
    # Each keyword heard is one sample "on": it starts the alert at once and keeps it for the 1 s window.
    # Off unless an exam turns it on: on real speech it still reports common words as keywords (README).
    "speech_keyword": dict(enabled=False, severity="warning", min_duration=0, end_after=0, cooldown=0, update_every=0,
                           window=1.0, on_fraction=0.01, keywords=list(KEYWORDS), thresholds=dict(THRESHOLDS),
                           default_threshold=1e-10),
    "identity_mismatch": dict(severity="critical", min_duration=3, end_after=5, cooldown=30, window=6.0,
                              on_fraction=0.6),
}

# Thresholds that make a kind more sensitive when lowered (True) or when raised (False).
_LOWER_IS_STRICTER = {"min_score": True, "yaw_deg": True, "down_deg": True, "lips": True, "dbfs": True,
                      "min_brightness": False, "min_contrast": False, "min_sharpness": False,
                      "min_view_match": False}
_DURATIONS = ("min_duration", "end_after", "cooldown")


def _derive(factor: float, threshold_step: float) -> dict[str, dict[str, Any]]:
    """Durations times ``factor``; thresholds moved by ``threshold_step`` (a share) towards stricter."""
    derived: dict[str, dict[str, Any]] = {}
    for kind, values in STANDARD.items():
        out = dict(values)
        for key in _DURATIONS:
            out[key] = round(values[key] * factor, 2)
        for key, lower_is_stricter in _LOWER_IS_STRICTER.items():
            if key in values:
                value = float(values[key])
                step = abs(value) * threshold_step
                out[key] = round(value - step if lower_is_stricter else value + step, 3)
        derived[kind] = out
    return derived


PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "standard": STANDARD,
    "strict": _derive(0.6, 0.15),
    "relaxed": _derive(1.6, -0.15),
}
