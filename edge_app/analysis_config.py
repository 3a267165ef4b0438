"""Settings of the per-frame analysis: model cadences, score floors and the hand/desk crop pass.

Kept apart from :mod:`edge_app.analysis` so that validating a config loads neither OpenCV nor the models.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AnalysisConfig(BaseModel):
    """How often each model runs and how the frame is searched."""

    model_config = ConfigDict(extra="forbid")

    calibration_seconds: float = Field(5.0, ge=1, le=120, description="seconds at session start spent calibrating")
    detector_hz: float = Field(5.0, gt=0, le=60, description="object detector runs per second")
    pose_hz: float = Field(5.0, gt=0, le=60, description="pose runs per second (on the candidate)")
    face_hz: float = Field(5.0, gt=0, le=60, description="face detector + landmarks runs per second")
    tamper_hz: float = Field(5.0, gt=0, le=60, description="view statistics per second")
    identity_every: float = Field(0.5, ge=0.1, le=3600, description="seconds between identity checks (one "
                                  "embedding of the face already found: ~5 ms on x86, tens of ms on a Pi)")
    identity_recheck: float = Field(0.5, ge=0.1, le=60, description="seconds between checks while the identity is "
                                    "in doubt (a failed check or a new candidate track), when identity_every is longer")
    person_score: float = Field(0.35, gt=0, lt=1, description="detector score a person needs")
    object_floor: float = Field(0.2, gt=0, lt=1, description="lowest phone/book/screen score passed to the rules "
                                "(each rule applies its own min_score)")
    screen_score: float = Field(0.4, gt=0, lt=1, description="detector score the PC screen needs at calibration")
    hand_crops: bool = Field(True, description="second detector pass on crops around the hands and desk")
    crop_hz: float = Field(2.5, gt=0, le=30, description="hand/desk crop passes per second")
    turned_crops: bool = Field(True, description="also look at each hand/desk crop turned a quarter, left and right "
                               "on alternate passes (a phone held sideways or lying across the desk; two detector "
                               "runs per crop)")
    max_identity_yaw: float = Field(30.0, gt=0, le=90, description="faces turned further are not compared")
