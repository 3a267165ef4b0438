"""Calibration at session start: seat zone (the candidate's box and pose), head-pose baseline, reference
view, expected PC screen, and a placement verdict with plain-language guidance for whoever aims the camera.

The :class:`Calibrator` collects what the analysis measured during the first seconds and
:meth:`Calibrator.finish` turns it into a :class:`Calibration`. Pure apart from numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge_app.protocol.placement import GUIDANCE
from edge_app.rules.observation import Box
from edge_app.tamper import CANDIDATE_MARGIN, ReferenceView

MIN_KEYPOINT_SCORE = 0.3
ZONE_MARGIN = 0.15  # the zone is the candidate's box grown by this share on each side
MAX_REFERENCE_FRAMES = 10


@dataclass(frozen=True)
class Placement:
    usable: bool
    checks: dict[str, bool]  # GUIDANCE key -> passed
    guidance: list[str]  # one sentence per failed check, most important first


@dataclass(frozen=True)
class Calibration:
    zone: Box  # the seat zone in frame pixels
    yaw: float  # head-pose baseline, degrees (a side view is not a frontal view)
    pitch: float
    reference: ReferenceView
    screen: Box | None  # the expected PC screen
    placement: Placement
    candidate_box: Box | None


@dataclass
class Calibrator:
    frame_size: tuple[int, int]  # width, height
    samples: int = 0
    boxes: list[Box] = field(default_factory=list)
    faces: list[tuple[float, float]] = field(default_factory=list)  # yaw, pitch
    hands: list[bool] = field(default_factory=list)
    desk: list[bool] = field(default_factory=list)
    screens: list[Box] = field(default_factory=list)
    brightness: list[float] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)
    reach: list[Box] = field(default_factory=list)  # extent of the confident pose keypoints

    def add(
        self,
        frame: np.ndarray,
        candidate: Box | None,
        keypoints: np.ndarray | None,
        head: tuple[float, float] | None,
        screens: list[Box],
    ) -> None:
        """One analysed moment: the candidate's box, pose keypoints (17, 3), head (yaw, pitch), screens."""
        self.samples += 1
        self.brightness.append(float(frame.mean()))
        if len(self.frames) < MAX_REFERENCE_FRAMES:
            self.frames.append(frame)
        if candidate is not None:
            self.boxes.append(candidate)
        if head is not None:
            self.faces.append(head)
        if keypoints is not None:
            confident = keypoints[keypoints[:, 2] >= MIN_KEYPOINT_SCORE]
            if len(confident) >= 3:  # where the candidate's body actually reaches (arms beyond the box)
                self.reach.append((float(confident[:, 0].min()), float(confident[:, 1].min()),
                                   float(confident[:, 0].max()), float(confident[:, 1].max())))
            wrists = keypoints[[9, 10]]
            both = bool((wrists[:, 2] >= MIN_KEYPOINT_SCORE).all())
            self.hands.append(both)
            lowest = float(wrists[:, 1].max())
            self.desk.append(both and lowest < 0.9 * self.frame_size[1])
        if screens:
            self.screens.append(max(screens, key=lambda b: (b[2] - b[0]) * (b[3] - b[1])))

    def finish(self) -> Calibration:
        if self.samples == 0:
            raise ValueError("calibration saw no frames")
        w, h = self.frame_size
        share = 1.0 / self.samples
        checks = {
            "candidate": len(self.boxes) * share >= 0.6,
            "face": len(self.faces) * share >= 0.5,
            "hands": sum(self.hands) * share >= 0.5,
            "desk": sum(self.desk) * share >= 0.5,
            "screen": len(self.screens) * share >= 0.5,
            "light": float(np.median(self.brightness)) >= 40,
        }
        box: Box | None = None
        if self.boxes:
            x1, y1, x2, y2 = (float(v) for v in np.median(np.array(self.boxes), axis=0))
            box = (x1, y1, x2, y2)
            if self.reach:  # the seat zone covers the pose too: hands stretched onto the desk stay inside
                rx1, ry1, rx2, ry2 = (float(v) for v in np.median(np.array(self.reach), axis=0))
                x1, y1, x2, y2 = min(x1, rx1), min(y1, ry1), max(x2, rx2), max(y2, ry2)
            mx, my = (x2 - x1) * ZONE_MARGIN, (y2 - y1) * ZONE_MARGIN
            zone = (max(0.0, x1 - mx), max(0.0, y1 - my), min(float(w), x2 + mx), min(float(h), y2 + my))
        else:
            zone = (w * 0.2, h * 0.1, w * 0.8, float(h))  # a central seat until someone sits down
        yaw, pitch = (float(v) for v in np.median(np.array(self.faces), axis=0)) if self.faces else (0.0, 0.0)
        screen = None
        if self.screens:
            s = np.median(np.array(self.screens), axis=0)
            screen = (float(s[0]), float(s[1]), float(s[2]), float(s[3]))
        guidance = [GUIDANCE[k] for k in GUIDANCE if not checks[k]]
        placement = Placement(usable=all(checks.values()), checks=checks, guidance=guidance)
        masked = zone
        if box is not None:
            gx, gy = (box[2] - box[0]) * CANDIDATE_MARGIN, (box[3] - box[1]) * CANDIDATE_MARGIN
            masked = (box[0] - gx, box[1] - gy, box[2] + gx, box[3] + gy)
        return Calibration(zone=zone, yaw=yaw, pitch=pitch, reference=ReferenceView.from_frames(self.frames, masked),
                           screen=screen, placement=placement, candidate_box=box)
