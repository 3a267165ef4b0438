"""Hand and desk crops for the second phone pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_app.crops import detect_turned, hand_and_desk_regions
from edge_app.track import box_iou
from edge_app.vision.models import load_models
from edge_app.vision.preprocess import read_rgb
from tools.fixtures import photo

CANDIDATE = (200.0, 50.0, 440.0, 480.0)


def keypoints(left: tuple[float, float, float], right: tuple[float, float, float]) -> np.ndarray:
    points = np.zeros((17, 3), np.float32)
    points[9], points[10] = left, right
    return points


def inside(region: tuple[float, float, float, float], size: tuple[int, int]) -> bool:
    return region[0] >= 0 and region[1] >= 0 and region[2] <= size[0] + 1e-3 and region[3] <= size[1] + 1e-3


def test_one_square_crop_per_visible_wrist() -> None:
    regions = hand_and_desk_regions(CANDIDATE, keypoints((220, 400, 0.8), (600, 100, 0.7)), (640, 480))
    assert len(regions) == 2
    for region, (x, y) in zip(regions, [(220, 400), (600, 100)], strict=True):
        assert region[0] <= x <= region[2] and region[1] <= y <= region[3]
        assert abs((region[2] - region[0]) - (region[3] - region[1])) < 1e-3
        assert inside(region, (640, 480))


def test_wrists_close_together_share_one_crop() -> None:
    assert len(hand_and_desk_regions(CANDIDATE, keypoints((300, 400, 0.8), (330, 410, 0.8)), (640, 480))) == 1


def test_without_visible_wrists_the_lower_body_is_searched() -> None:
    regions = hand_and_desk_regions(CANDIDATE, keypoints((0, 0, 0.1), (0, 0, 0.1)), (640, 480))
    assert len(regions) == 1
    x1, _, x2, y2 = regions[0]
    assert y2 > 400 and x1 < 320 < x2 and inside(regions[0], (640, 480))
    assert hand_and_desk_regions(CANDIDATE, None, (640, 480)) == regions


def test_the_detector_on_a_turned_crop_reports_frame_pixels(models_dir: Path) -> None:
    models = load_models(models_dir)
    image = read_rgb(str(photo("zidane.jpg")))
    region = (100.0, 50.0, 700.0, 650.0)
    upright = [d for d in detect_turned(models.detector, image, region, 0) if d.label == "person"]
    for turns in (1, 3):
        turned = [d for d in detect_turned(models.detector, image, region, turns) if d.label == "person"]
        assert turned, f"the people are still found turned {turns} quarters"
        best = max(box_iou(t.box, u.box) for t in turned for u in upright)
        assert best > 0.6, (turns, best)
