"""One frame in, one :class:`Observation` out: every model on its own cadence, tracks, calibration.

The analyser owns the models for a session. The first ``calibration_seconds`` feed the
:class:`Calibrator` and give no observation; after that each frame yields the facts the rules judge.
Stage times (ms) are kept per frame for the loop's figures.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field, replace

import numpy as np

from edge_app.analysis_config import AnalysisConfig
from edge_app.calibrate import Calibration, Calibrator
from edge_app.crops import QUARTER_TURNS, detect_turned, hand_and_desk_regions
from edge_app.rules.observation import Box, Observation, Sighting
from edge_app.tamper import view_stats
from edge_app.track import PersonTracker, Track, box_iou, overlap
from edge_app.vision.detector import COCO_LABELS, Detection
from edge_app.vision.face import Face
from edge_app.vision.identity import cosine
from edge_app.vision.models import VisionModels

SCREENS = ("tv", "laptop")
MATERIAL = ("book",)


@dataclass
class Analysis:
    observation: Observation | None  # None while calibrating
    stages_ms: dict[str, float] = field(default_factory=dict)
    calibration: Calibration | None = None  # set on the frame that finished calibrating


def distinct_people(people: list[tuple[Box, float]], contained: float = 0.8) -> list[tuple[Box, float]]:
    """Drop person boxes lying mostly inside a stronger one (a shoulder or an arm found as a second person)."""
    kept: list[tuple[Box, float]] = []
    for box, score in sorted(people, key=lambda p: p[1], reverse=True):
        if all(overlap(box, other) < contained for other, _ in kept):
            kept.append((box, score))
    return kept


class Cadence:
    """Which model is due at time t, each on its own period."""

    def __init__(self, periods: dict[str, float]) -> None:
        self.periods = periods
        self.last: dict[str, float] = {}

    def due(self, name: str, t: float) -> bool:
        last = self.last.get(name)
        if last is not None and t - last < self.periods[name] - 1e-6:
            return False
        self.last[name] = t
        return True

    def reset(self, name: str) -> None:
        self.last.pop(name, None)


class FrameAnalyzer:
    def __init__(
        self,
        models: VisionModels,
        config: AnalysisConfig,
        template: np.ndarray | None = None,
        zone_margin: float = 0.25,
        identity_threshold: float = 0.6,
    ) -> None:
        """``zone_margin`` and ``identity_threshold`` come from the left_zone and identity_mismatch rules."""
        self.models, self.config, self.template = models, config, template
        self.zone_margin, self.identity_threshold = zone_margin, identity_threshold
        # Per-class scores this analyzer asks of the (possibly shared) detector: only the labels it uses.
        self.thresholds = np.full(len(COCO_LABELS), 1.01, np.float32)
        self.thresholds[COCO_LABELS.index("person")] = config.person_score
        for label in ("cell phone", *MATERIAL, *SCREENS):
            self.thresholds[COCO_LABELS.index(label)] = config.object_floor
        self.cadence = Cadence({"detector": 1 / config.detector_hz, "pose": 1 / config.pose_hz,
                                "face": 1 / config.face_hz, "tamper": 1 / config.tamper_hz,
                                "crops": 1 / config.crop_hz, "identity": config.identity_every})
        self.tracker = PersonTracker()
        self.calibrator: Calibrator | None = None
        self.calibration: Calibration | None = None
        self.started: float | None = None
        self.keypoints: np.ndarray | None = None
        self.crop_passes = 0
        self.mouth: deque[tuple[float, float]] = deque(maxlen=30)
        self.identity_doubt_until = 0.0
        self.candidate_id: int | None = None

    def use_template(self, template: np.ndarray | None) -> None:
        """Compare faces with this identity template from now on (None: no identity checks); check soon."""
        self.template = template
        self.identity_doubt_until = 0.0
        self.cadence.reset("identity")

    def use_limits(self, zone_margin: float, identity_threshold: float) -> None:
        """New left_zone margin and identity threshold (the rules' values, changed by a command)."""
        self.zone_margin, self.identity_threshold = zone_margin, identity_threshold

    def _time(self, stages: dict[str, float], name: str, begun: float) -> None:
        stages[name] = stages.get(name, 0.0) + (time.perf_counter() - begun) * 1000

    def analyse(self, frame: np.ndarray, t: float) -> Analysis:
        stages: dict[str, float] = {}
        height, width = frame.shape[:2]
        if self.started is None:
            self.started, self.calibrator = t, Calibrator((width, height))
        calibrating = self.calibration is None
        zone = None if self.calibration is None else self.calibration.zone
        obs = Observation(t)  # filled in by each stage that runs on this frame (dataclasses.replace, typed)

        candidate: Track | None = None
        detections: list[Detection] | None = None
        if self.cadence.due("detector", t):
            begun = time.perf_counter()
            detections = self.models.detector.detect(frame, thresholds=self.thresholds)
            people = distinct_people([(d.box, d.score) for d in detections if d.label == "person"])
            visible = self.tracker.update(people, t)
            candidate = self.tracker.candidate(visible, zone)
            self._time(stages, "detector", begun)
            in_zone = self._in_zone(candidate.box, zone) if candidate is not None and zone is not None else None
            obs = replace(obs, people=len(visible), candidate=candidate.box if candidate else None, in_zone=in_zone)
            if candidate is not None and candidate.id != self.candidate_id:
                self.candidate_id = candidate.id
                self.identity_doubt_until = t + 10.0  # a new person in the seat: check who it is soon
                self.cadence.reset("identity")
        else:
            candidate = next((tr for tr in self.tracker.tracks if tr.id == self.tracker.candidate_id), None)

        if candidate is not None and self.cadence.due("pose", t):
            begun = time.perf_counter()
            self.keypoints = self.models.pose.estimate(frame, candidate.box).as_array()
            self._time(stages, "pose", begun)
        elif candidate is None:
            self.keypoints = None

        face, obs = self._face(frame, candidate, t, stages, obs)
        screens, obs = self._objects(frame, detections, candidate, t, stages, obs)
        if not calibrating and self.cadence.due("tamper", t):
            begun = time.perf_counter()
            seen = [tr.box for tr in self.tracker.tracks if tr.confirmed]
            obs = replace(obs, view=view_stats(frame, self.calibration.reference if self.calibration else None, seen))
            self._time(stages, "tamper", begun)

        if calibrating:
            assert self.calibrator is not None
            if detections is not None:
                head = None
                if face is not None and face.yaw is not None and face.pitch is not None:
                    head = (face.yaw, face.pitch)
                self.calibrator.add(frame, candidate.box if candidate else None, self.keypoints, head, screens)
            if t - self.started >= self.config.calibration_seconds and self.calibrator.samples:
                self.calibration = self.calibrator.finish()
                self.tracker.candidate_id = None  # re-pick the candidate against the seat zone
                return Analysis(None, stages, self.calibration)
            return Analysis(None, stages)
        if self.template is not None and face is not None:
            obs = replace(obs, identity=self._identity(frame, face, t, stages))
        return Analysis(obs, stages)

    def _in_zone(self, box: Box, zone: Box) -> bool:
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        mx, my = (zone[2] - zone[0]) * self.zone_margin, (zone[3] - zone[1]) * self.zone_margin
        return zone[0] - mx <= cx <= zone[2] + mx and zone[1] - my <= cy <= zone[3] + my and overlap(box, zone) > 0.3

    def _face(self, frame: np.ndarray, candidate: Track | None, t: float, stages: dict[str, float],
              obs: Observation) -> tuple[Face | None, Observation]:
        if candidate is None or not self.cadence.due("face", t):
            return None, obs
        begun = time.perf_counter()
        faces = [f for f in self.models.face_detector.detect(frame) if overlap(f.box, candidate.box) > 0.6]
        face = None
        if faces:
            face = self.models.face_landmarks.landmarks(frame, max(faces, key=lambda f: f.side))
        self._time(stages, "face", begun)
        if face is None or face.yaw is None or face.pitch is None or face.mouth_open is None:
            return face, obs
        self.mouth.append((t, face.mouth_open))
        recent = [m for ts, m in self.mouth if ts > t - 1.0]
        if len(recent) >= 3:
            obs = replace(obs, lips=float(max(recent) - min(recent)))
        if self.calibration is not None:
            obs = replace(obs, yaw_off=face.yaw - self.calibration.yaw, pitch_off=face.pitch - self.calibration.pitch)
        return face, obs

    def _objects(self, frame: np.ndarray, detections: list[Detection] | None, candidate: Track | None, t: float,
                 stages: dict[str, float], obs: Observation) -> tuple[list[Box], Observation]:
        if detections is None:
            return [], obs
        phones = [Sighting(d.label, d.score, d.box) for d in detections if d.label == "cell phone"]
        if self.config.hand_crops and candidate is not None and self.cadence.due("crops", t):
            begun = time.perf_counter()
            height, width = frame.shape[:2]
            quarter = QUARTER_TURNS[self.crop_passes % len(QUARTER_TURNS)] if self.config.turned_crops else 0
            self.crop_passes += 1
            for region in hand_and_desk_regions(candidate.box, self.keypoints, (width, height)):
                found = self.models.detector.detect(frame, region, self.thresholds)
                if quarter:  # one quarter turn per pass, left and right by turns: twice the upright cost, not three
                    found += detect_turned(self.models.detector, frame, region, quarter, self.thresholds)
                for d in sorted(found, key=lambda d: -d.score):
                    if d.label == "cell phone" and all(box_iou(d.box, p.box) < 0.5 for p in phones):
                        phones.append(Sighting(d.label, d.score, d.box))
            self._time(stages, "crops", begun)
        screens = [d.box for d in detections if d.label in SCREENS and d.score >= self.config.screen_score]
        expected = self.calibration.screen if self.calibration else None
        materials = tuple(
            Sighting(d.label, d.score, d.box) for d in detections
            if d.label in MATERIAL or (d.label in SCREENS and (expected is None or box_iou(d.box, expected) < 0.3)
                                       and self.calibration is not None)
        )
        return screens, replace(obs, phones=tuple(phones), materials=materials)

    def _identity(self, frame: np.ndarray, face: Face, t: float, stages: dict[str, float]) -> float | None:
        """Similarity of the face to the template when a check is due (None: not checked on this frame)."""
        if face.yaw is None or abs(face.yaw) > self.config.max_identity_yaw:
            return None
        doubt = t < self.identity_doubt_until
        if doubt:
            self.cadence.periods["identity"] = self.config.identity_recheck
        else:
            self.cadence.periods["identity"] = self.config.identity_every
        if not self.cadence.due("identity", t):
            return None
        begun = time.perf_counter()
        assert self.template is not None
        similarity = cosine(self.models.face_embedding.embed(frame, face), self.template)
        self._time(stages, "identity", begun)
        if similarity < self.identity_threshold:
            self.identity_doubt_until = max(self.identity_doubt_until, t + 10.0)
        return similarity
