"""The frame analyser with the real int8 models on real photos: calibration, candidate, head, identity."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_app.analysis import AnalysisConfig, Cadence, FrameAnalyzer, distinct_people
from edge_app.rules.config import RulesConfig
from edge_app.rules.observation import Observation
from edge_app.vision.identity import enroll
from edge_app.vision.models import VisionModels, load_models

FPS = 10


@pytest.fixture(scope="module")
def models(models_dir: Path) -> VisionModels:
    return load_models(models_dir, "int8", threads=1)


def play(analyzer: FrameAnalyzer, frames: list, start: float = 0.0) -> list[Observation]:  # type: ignore[type-arg]
    out = []
    for i, frame in enumerate(frames):
        analysis = analyzer.analyse(frame, round(start + i / FPS, 3))
        if analysis.observation is not None:
            out.append(analysis.observation)
    return out


@pytest.mark.parametrize(
    ("people", "kept"),
    [
        ([((0, 0, 100, 200), 0.9)], 1),
        ([((0, 0, 100, 200), 0.9), ((10, 50, 60, 120), 0.5)], 1),  # a shoulder inside the person
        ([((0, 0, 100, 200), 0.9), ((80, 0, 180, 200), 0.6)], 2),  # two people side by side
        ([((10, 50, 60, 120), 0.5), ((0, 0, 100, 200), 0.9)], 1),  # order does not matter
    ],
)
def test_distinct_people(people: list, kept: int) -> None:  # type: ignore[type-arg]
    assert len(distinct_people(people)) == kept


def test_cadence_runs_each_model_at_its_rate() -> None:
    cadence = Cadence({"detector": 0.2, "face": 1.0})
    runs = {"detector": 0, "face": 0}
    for i in range(50):  # 5 s at 10 fps
        for name in runs:
            runs[name] += cadence.due(name, i / 10)
    assert runs == {"detector": 25, "face": 5}


def test_the_seated_candidate_calibrates_then_is_observed(models: VisionModels, scene, photo) -> None:  # type: ignore[no-untyped-def]
    template = enroll(models, photo("obama.jpg"))
    analyzer = FrameAnalyzer(models, AnalysisConfig(calibration_seconds=3), template)
    observations = play(analyzer, [scene("obama2.jpg", i) for i in range(60)])
    calibration = analyzer.calibration
    assert calibration is not None
    assert calibration.placement.checks["candidate"] and calibration.placement.checks["face"]
    assert not calibration.placement.checks["screen"]  # no PC screen in this scene, and it says so
    measured = [o for o in observations if o.people is not None]
    assert measured and all(o.people == 1 and o.candidate is not None and o.in_zone for o in measured)
    heads = [o for o in observations if o.yaw_off is not None]
    assert heads and all(abs(o.yaw_off) < 5 and abs(o.pitch_off) < 5 for o in heads)  # type: ignore[arg-type]
    views = [o.view for o in observations if o.view is not None]
    assert views and all(v.view_match > 0.9 and v.sharpness > 0.7 for v in views)
    identities = [o.identity for o in observations if o.identity is not None]
    assert identities and min(identities) >= 0.6
    # no phone at the phone rule's score; a sighting at the observation floor (evidence for the rule's
    # window, far below its bar) may flicker on a frame or two
    phone_score = RulesConfig.model_validate({}).phone.min_score
    assert all(s.score < phone_score for o in measured for s in o.phones)
    assert sum(bool(o.phones) for o in measured) <= 2


def test_a_substitute_is_checked_at_once_and_does_not_match(models: VisionModels, scene, photo) -> None:  # type: ignore[no-untyped-def]
    template = enroll(models, photo("obama.jpg"))
    analyzer = FrameAnalyzer(models, AnalysisConfig(calibration_seconds=3, identity_every=300), template)
    frames = ([scene("obama2.jpg", i) for i in range(40)] + [scene(None, i) for i in range(30)]
              + [scene("biden.jpg", i) for i in range(40)])
    observations = play(analyzer, frames)
    empty = [o for o in observations if 4.0 <= o.t < 7.0 and o.people is not None]
    assert empty and all(o.people == 0 and o.candidate is None for o in empty[5:])
    views = [o.view for o in observations if 4.0 <= o.t < 7.0 and o.view is not None]
    assert all(v.view_match > 0.8 for v in views)  # an empty seat is not a moved camera
    substitute = [o.identity for o in observations if o.t >= 7.0 and o.identity is not None]
    assert len(substitute) >= 3  # re-checked every second although the periodic check is every 300 s
    assert max(substitute) < 0.6
