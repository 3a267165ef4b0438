"""Sensitivity presets: ``standard`` as tuned on the scenarios, ``strict`` and ``relaxed`` derived from it.

``strict`` raises sooner (durations x0.6) at more sensitive thresholds; ``relaxed`` waits longer (x1.6)
at less sensitive ones. A config overrides any field of any kind on top of its preset.
"""

from __future__ import annotations

from typing import Any, Literal

Preset = Literal["strict", "standard", "relaxed"]

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
