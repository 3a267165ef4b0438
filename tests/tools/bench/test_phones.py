"""Phone-recall helpers of `make bench`."""

from __future__ import annotations

import pytest

from edge_app.vision.detector import Detection
from tools.bench.phones import crop_regions, false_rate_at, is_hit, negative_photos, recall_at


def phone(score: float, box: tuple[float, float, float, float]) -> Detection:
    return Detection("cell phone", 67, score, box)


def test_crops_cover_the_photo_and_overlap() -> None:
    regions = crop_regions(490, 326)
    assert len(regions) == 4
    assert min(r[0] for r in regions) == 0 and max(r[2] for r in regions) == pytest.approx(490)
    assert min(r[1] for r in regions) == 0 and max(r[3] for r in regions) == pytest.approx(326)
    assert regions[0][2] > regions[2][0]  # left and right crops overlap in the middle


@pytest.mark.parametrize(
    ("detections", "hit"),
    [([phone(0.5, (40, 40, 60, 60))], True), ([phone(0.5, (0, 0, 10, 10))], False),
     ([Detection("remote", 65, 0.9, (40, 40, 60, 60))], False), ([], False)],
)
def test_a_hit_is_a_phone_box_holding_the_labelled_centre(detections: list[Detection], hit: bool) -> None:
    assert is_hit(detections, 100, 100, 0.5, 0.5) is hit


def test_recall_and_false_rate_follow_the_threshold() -> None:
    per_photo = [([phone(score, (40, 40, 60, 60))], 100, 100, 0.5, 0.5) for score in (0.4, 0.2)]
    assert recall_at(per_photo, 0.3) == 0.5 and recall_at(per_photo, 0.1) == 1.0
    negatives = [[phone(0.26, (0, 0, 5, 5))], []]
    assert false_rate_at(negatives, 0.25) == 0.5 and false_rate_at(negatives, 0.3) == 0.0


def test_at_least_fifty_declared_photos_without_a_phone_come_from_the_registries() -> None:
    paths = negative_photos()
    assert len(set(paths)) == len(paths) >= 50
    assert all(path.is_file() and path.stat().st_size > 1000 for path in paths)
