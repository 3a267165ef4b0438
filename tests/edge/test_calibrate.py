"""Calibration: seat zone, baselines, screen and the placement verdict."""

from __future__ import annotations

import numpy as np
import pytest

from edge_app.calibrate import GUIDANCE, Calibrator

SIZE = (640, 480)


def frame(value: int = 120) -> np.ndarray:
    image = np.full((480, 640, 3), value, np.uint8)
    image[::8] = value + 20  # some structure for the reference view
    return image


def keypoints(wrist_score: float, wrist_y: float = 380.0) -> np.ndarray:
    points = np.zeros((17, 3), np.float32)
    points[9] = (260, wrist_y, wrist_score)
    points[10] = (380, wrist_y, wrist_score)
    return points


def test_a_good_placement_is_usable_with_zone_baseline_and_screen() -> None:
    calibrator = Calibrator(SIZE)
    for i in range(10):
        calibrator.add(frame(), (200.0 + i % 2, 60.0, 440.0, 460.0), keypoints(0.8), (30.0 + i % 3, 8.0),
                       [(480.0, 50.0, 630.0, 200.0)])
    result = calibrator.finish()
    assert result.placement.usable and result.placement.guidance == []
    assert result.yaw == pytest.approx(31.0) and result.pitch == pytest.approx(8.0)
    x1, y1, x2, y2 = result.zone
    assert x1 < 200 and x2 > 440 and y1 < 60 and y2 <= 480
    assert result.screen == (480.0, 50.0, 630.0, 200.0)


@pytest.mark.parametrize(
    ("change", "failed"),
    [
        ({"candidate": None}, {"candidate", "face", "hands", "desk"}),
        ({"head": None}, {"face"}),
        ({"keypoints": keypoints(0.1)}, {"hands", "desk"}),
        ({"keypoints": keypoints(0.8, wrist_y=470)}, {"desk"}),
        ({"screens": []}, {"screen"}),
        ({"frame": frame(15)}, {"light"}),
    ],
)
def test_each_missing_part_fails_its_check_with_guidance(change: dict, failed: set[str]) -> None:
    calibrator = Calibrator(SIZE)
    args = {"frame": frame(), "candidate": (200.0, 60.0, 440.0, 460.0), "keypoints": keypoints(0.8),
            "head": (0.0, 0.0), "screens": [(480.0, 50.0, 630.0, 200.0)]}
    args.update(change)
    if args["candidate"] is None:
        args["keypoints"], args["head"] = None, None
    for _ in range(8):
        calibrator.add(args["frame"], args["candidate"], args["keypoints"], args["head"], args["screens"])
    placement = calibrator.finish().placement
    assert not placement.usable
    assert {k for k, ok in placement.checks.items() if not ok} == failed
    assert placement.guidance == [GUIDANCE[k] for k in GUIDANCE if k in failed]


def test_no_frames_cannot_calibrate() -> None:
    with pytest.raises(ValueError, match="no frames"):
        Calibrator(SIZE).finish()


def test_the_seat_zone_reaches_as_far_as_the_pose() -> None:
    calibrator = Calibrator(SIZE)
    points = keypoints(0.8)
    points[[5, 6]] = (250, 150, 0.9), (390, 150, 0.9)  # shoulders
    points[10] = (560, 400, 0.9)  # a hand stretched onto the desk, beyond the person box
    for _ in range(6):
        calibrator.add(frame(), (200.0, 60.0, 440.0, 460.0), points, (0.0, 0.0), [])
    zone = calibrator.finish().zone
    assert zone[2] > 560 and zone[0] < 200
