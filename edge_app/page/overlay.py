"""The placement drawn over a preview frame: seat zone, candidate, face, hands, desk and PC screen boxes.

Boxes come in frame pixels (``Placement boxes``: a dict of name -> box or list of boxes); a box is green
when its check passed, red when it failed, grey before any verdict. Pure apart from OpenCV and numpy.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from edge_app.calibrate import MIN_KEYPOINT_SCORE, Calibration
from edge_app.crops import hand_and_desk_regions
from edge_app.rules.observation import Box

FACE_POINTS = (0, 1, 2, 3, 4)  # nose, eyes, ears
WRISTS = (9, 10)
PASSED, FAILED, UNKNOWN, ZONE = (40, 200, 60), (230, 40, 40), (170, 170, 170), (255, 200, 0)  # RGB
CHECK_OF = {"candidate": "candidate", "face": "face", "hands": "hands", "desk": "desk", "screen": "screen"}
LABELS = {"zone": "seat zone", "candidate": "candidate", "face": "face", "hands": "hand", "desk": "desk",
          "screen": "PC screen"}


def _rounded(box: Box) -> list[float]:
    return [round(float(v), 1) for v in box]


def face_box(keypoints: np.ndarray | None) -> Box | None:
    """A box around the confident face points of a pose (nose, eyes, ears), grown to cover the head."""
    if keypoints is None:
        return None
    points = keypoints[list(FACE_POINTS)]
    points = points[points[:, 2] >= MIN_KEYPOINT_SCORE]
    if len(points) < 2:
        return None
    x1, y1 = float(points[:, 0].min()), float(points[:, 1].min())
    x2, y2 = float(points[:, 0].max()), float(points[:, 1].max())
    side = max(x2 - x1, y2 - y1, 16.0)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return cx - 0.8 * side, cy - 1.0 * side, cx + 0.8 * side, cy + 0.9 * side


def hand_boxes(keypoints: np.ndarray | None, candidate: Box | None) -> list[Box]:
    """Squares around the confident wrists, a quarter of the candidate's width on a side."""
    if keypoints is None or candidate is None:
        return []
    side = max(0.25 * (candidate[2] - candidate[0]), 24.0)
    found = []
    for index in WRISTS:
        x, y, score = (float(v) for v in keypoints[index])
        if score >= MIN_KEYPOINT_SCORE:
            found.append((x - side / 2, y - side / 2, x + side / 2, y + side / 2))
    return found


def moment_boxes(frame_size: tuple[int, int], candidate: Box | None, keypoints: np.ndarray | None,
                 screen: Box | None) -> dict[str, Any]:
    """What one analysed frame shows: candidate, face, hands, desk (where the unit looks for objects), screen."""
    desk = hand_and_desk_regions(candidate, keypoints, frame_size, 1) if candidate is not None else []
    face = face_box(keypoints)
    return {"candidate": _rounded(candidate) if candidate else None, "face": _rounded(face) if face else None,
            "hands": [_rounded(b) for b in hand_boxes(keypoints, candidate)],
            "desk": _rounded(desk[0]) if desk else None, "screen": _rounded(screen) if screen else None}


def verdict(calibration: Calibration, frame_size: tuple[int, int], t: float, source: str,
            boxes: dict[str, Any] | None = None) -> dict[str, Any]:
    """The placement verdict as the page and ``/api/placement`` give it (no image)."""
    drawn = dict(boxes or {})
    drawn["zone"] = _rounded(calibration.zone)
    if calibration.candidate_box is not None:
        drawn["candidate"] = _rounded(calibration.candidate_box)
    if calibration.screen is not None:
        drawn["screen"] = _rounded(calibration.screen)
    placement = calibration.placement
    return {"usable": placement.usable, "checks": dict(placement.checks), "guidance": list(placement.guidance),
            "boxes": drawn, "frame_size": list(frame_size), "t": round(t, 3), "source": source}


def _colour(name: str, checks: dict[str, bool] | None) -> tuple[int, int, int]:
    if name == "zone":
        return ZONE
    if not checks or CHECK_OF.get(name) not in checks:
        return UNKNOWN
    return PASSED if checks[CHECK_OF[name]] else FAILED


def draw(image: np.ndarray, boxes: dict[str, Any], checks: dict[str, bool] | None,
         scale: float = 1.0) -> np.ndarray:
    """An RGB copy of ``image`` with every box drawn and labelled; ``scale`` maps frame pixels to the image."""
    out = np.ascontiguousarray(image).copy()
    thick = max(1, round(out.shape[1] / 320))
    for name in ("zone", "desk", "screen", "candidate", "face", "hands"):
        value = boxes.get(name)
        if not value:
            continue
        colour = _colour(name, checks)
        for box in value if name == "hands" else [value]:
            x1, y1, x2, y2 = (round(v * scale) for v in box)
            cv2.rectangle(out, (x1, y1), (x2, y2), colour, thick, cv2.LINE_AA)
            label = LABELS[name]
            cv2.putText(out, label, (x1 + 3, max(12, y1 + 14)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
    return out


def encode(image_rgb: np.ndarray, quality: int = 75) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("the preview frame could not be encoded")
    return data.tobytes()
