"""Where to look again for small objects: square crops around the candidate's hands and desk.

A full-frame pass shrinks a 640x480 frame to 416x416 and a phone to a few pixels; the same detector on a
crop around a wrist sees it several times larger (the phone figures in the README measure the gain).
"""

from __future__ import annotations

import numpy as np

from edge_app.rules.observation import Box
from edge_app.track import box_iou
from edge_app.vision.detector import Detection, ObjectDetector

MIN_WRIST_SCORE = 0.3
WRISTS = (9, 10)  # MoveNet left_wrist, right_wrist


def _square(cx: float, cy: float, side: float, width: int, height: int) -> Box:
    side = min(side, float(width), float(height))
    x1 = min(max(0.0, cx - side / 2), width - side)
    y1 = min(max(0.0, cy - side / 2), height - side)
    return (x1, y1, x1 + side, y1 + side)


def _union(a: Box, b: Box) -> Box:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def hand_and_desk_regions(
    candidate: Box, keypoints: np.ndarray | None, frame_size: tuple[int, int], max_regions: int = 2
) -> list[Box]:
    """Crops (frame pixels) around visible wrists, else around the lower half of the candidate's box."""
    width, height = frame_size
    body = max(candidate[2] - candidate[0], 1.0)
    side = max(0.6 * body, 128.0)
    regions: list[Box] = []
    if keypoints is not None:
        for index in WRISTS:
            x, y, score = (float(v) for v in keypoints[index])
            if score >= MIN_WRIST_SCORE:
                regions.append(_square(x, y, side, width, height))
    if not regions:
        x1, y1, x2, y2 = candidate
        cy = y1 + 0.75 * (y2 - y1)
        regions.append(_square((x1 + x2) / 2, cy, max(side, 0.8 * body), width, height))
    merged: list[Box] = []
    for region in regions:
        for i, kept in enumerate(merged):
            if box_iou(region, kept) > 0.2:
                merged[i] = _union(region, kept)
                break
        else:
            merged.append(region)
    return merged[:max_regions]


QUARTER_TURNS = (1, 3)  # a quarter turn left and right, beside the upright look


def detect_turned(
    detector: ObjectDetector, frame: np.ndarray, region: Box, turns: int, thresholds: np.ndarray | None = None
) -> list[Detection]:
    """The detector on ``region`` of the frame turned ``turns`` quarters, boxes in frame pixels
    (``thresholds``: the caller's per-class scores, as in ``ObjectDetector.detect``).

    COCO's phones are mostly upright in a hand; a phone held sideways or lying across a desk scores far
    higher once turned upright (the README's phone figures measure the gain)."""
    x1, y1 = max(0, int(region[0])), max(0, int(region[1]))
    x2, y2 = min(frame.shape[1], round(region[2])), min(frame.shape[0], round(region[3]))
    if x2 - x1 < 8 or y2 - y1 < 8:
        return []
    return detector.detect(frame, (x1, y1, x2, y2), thresholds, turns)
