"""The loop figures of `make bench`: model time per stage and the non-model remainder."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest

from edge_app.vision.models import VisionModels
from tools.bench.edge import ModelClock, breakdown


def _fake_models() -> VisionModels:
    """Holders whose model's interpreter invoke returns at once; the detector's detect() invokes it once."""
    holders: dict[str, Any] = {}
    for name in ("detector", "pose", "face_detector", "face_landmarks", "face_embedding"):
        holders[name] = SimpleNamespace(model=SimpleNamespace(_invoke=lambda: [np.zeros(1)]))
    detector = holders["detector"]
    detector.detect = lambda frame, region=None, thresholds=None, turns=0: detector.model._invoke()
    return cast(VisionModels, SimpleNamespace(**holders))


def test_detector_runs_on_anything_but_the_analysed_frame_count_as_crops() -> None:
    models = _fake_models()
    clock = ModelClock(models)
    frame = np.zeros((4, 4, 3), np.uint8)
    clock.frame = frame
    models.detector.detect(frame)
    models.detector.detect(frame, (0, 0, 2, 2))  # a region of the frame
    models.detector.detect(np.rot90(frame).copy())  # a turned copy
    models.detector.detect(frame, (0, 0, 2, 2), None, 1)  # a region turned by the detector
    models.pose.model._invoke()
    assert {name: len(values) for name, values in clock.spent.items()} == {"detector": 1, "crops": 3, "pose": 1}


def test_breakdown_splits_each_stage_into_model_time_and_the_rest() -> None:
    stages = {"detector": [10.0, 12.0], "face": [5.0], "tamper": [1.0], "evidence": [0.5, 0.5]}
    invokes = {"detector": [8.0, 9.0], "face_detector": [2.0], "face_landmarks": [1.5], "crops": [7.0]}
    rows = breakdown(stages, invokes, loop_total=40.0)
    assert rows["detector"]["model_ms"] == 17.0 and rows["detector"]["other_ms"] == 5.0
    assert rows["face"]["model_ms"] == 3.5 and rows["face"]["other_ms"] == 1.5
    assert rows["tamper"]["model_ms"] == 0.0 and rows["tamper"]["other_ms"] == 1.0
    assert rows["outside stages"]["total_ms"] == pytest.approx(40.0 - 29.0)
    assert sum(r["share"] for r in rows.values()) == pytest.approx(1.0, abs=0.01)
