"""View statistics: covered, blurred and moved cameras against a real reference view."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_app.tamper import ReferenceView, view_stats

ZONE = (200.0, 100.0, 440.0, 480.0)


def noisy(image: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(image.astype(np.int16) + rng.normal(0, 3, image.shape).astype(np.int16), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def scene(photo) -> np.ndarray:  # type: ignore[no-untyped-def]
    return cv2.resize(photo("bus.jpg"), (640, 480))


@pytest.fixture(scope="module")
def reference(scene: np.ndarray) -> ReferenceView:
    return ReferenceView.from_frames([noisy(scene, i) for i in range(5)], ZONE)


def test_the_same_view_matches(scene: np.ndarray, reference: ReferenceView) -> None:
    stats = view_stats(noisy(scene, 99), reference)
    assert stats.view_match > 0.95 and 0.8 < stats.sharpness < 1.2


def test_a_covered_camera_is_dark_and_flat(scene: np.ndarray, reference: ReferenceView) -> None:
    stats = view_stats(noisy(np.full_like(scene, 6), 1), reference)
    assert stats.brightness < 20 and stats.contrast < 10


def test_a_blurred_view_loses_sharpness(scene: np.ndarray, reference: ReferenceView) -> None:
    stats = view_stats(cv2.GaussianBlur(scene, (0, 0), 6), reference)
    assert stats.sharpness < 0.25


def test_a_moved_camera_no_longer_matches(scene: np.ndarray, reference: ReferenceView, photo) -> None:  # type: ignore[no-untyped-def]
    shifted = np.roll(scene, 200, axis=1)
    elsewhere = cv2.resize(photo("coffee.png"), (640, 480))
    assert view_stats(shifted, reference).view_match < 0.5
    assert view_stats(elsewhere, reference).view_match < 0.5


def test_changes_inside_the_seat_zone_do_not_read_as_moved(scene: np.ndarray, reference: ReferenceView,
                                                           photo) -> None:  # type: ignore[no-untyped-def]
    changed = scene.copy()
    x1, y1, x2, y2 = (int(v) for v in ZONE)
    changed[y1:y2, x1:x2] = cv2.resize(photo("coffee.png"), (x2 - x1, y2 - y1))
    assert view_stats(changed, reference).view_match > 0.8


def test_a_bare_background_does_not_judge_movement() -> None:
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[100:480, 250:390] = 200  # only the seat zone has anything in it
    reference = ReferenceView.from_frames([noisy(frame, i) for i in range(3)], (200.0, 50.0, 440.0, 480.0))
    assert not reference.judges_view
    empty_seat = noisy(np.full_like(frame, 90), 7)
    assert view_stats(empty_seat, reference).view_match == 1.0


def test_no_frames_is_an_error() -> None:
    with pytest.raises(ValueError, match="no frames"):
        ReferenceView.from_frames([], None)


def test_a_person_walking_into_the_scenery_is_not_a_moved_camera(scene: np.ndarray, reference: ReferenceView,
                                                                  photo) -> None:  # type: ignore[no-untyped-def]
    visitor = (0, 100, 190, 480)
    changed = scene.copy()
    changed[100:480, 0:190] = cv2.resize(photo("zidane.jpg"), (190, 380))
    assert view_stats(changed, reference).view_match < view_stats(changed, reference, [visitor]).view_match
    assert view_stats(changed, reference, [visitor]).view_match > 0.8
