"""Frames: layers stack in depth order; the camera adds reproducible shake, drift and noise."""

from __future__ import annotations

import numpy as np

from tools.scenarios.compose import Camera, View, pingpong, scene_image
from tools.scenarios.scene import SceneAssets


def test_pingpong_plays_forwards_then_backwards() -> None:
    assert [pingpong(i, 4) for i in range(8)] == [0, 1, 2, 3, 2, 1, 0, 1]
    assert [pingpong(i, 1) for i in range(3)] == [0, 0, 0]


def test_the_camera_is_reproducible_and_never_frozen() -> None:
    image = SceneAssets().plate.copy()
    a, b = Camera(7, 20, 10.0), Camera(7, 20, 10.0)
    first = [a.capture(image, k) for k in range(3)]
    assert all(np.array_equal(x, b.capture(image, k)) for k, x in enumerate(first)), "same seed, same frames"
    step = np.abs(first[1].astype(int) - first[0].astype(int)).mean()
    assert 0.5 < step < 8.0
    assert not np.array_equal(Camera(8, 20, 10.0).capture(image, 0), first[0])


def test_views_stack_people_props_and_camera_states() -> None:
    assets = SceneAssets()
    empty = scene_image(assets, View(), 0.0)
    seated = scene_image(assets, View(candidate="franck_seated"), 0.0)
    extra = scene_image(assets, View(candidate="franck_seated", extras=("obama_standing",)), 0.0)
    assert np.abs(seated - empty)[100:300, 250:450].mean() > 30, "the candidate covers the seat"
    assert np.abs(extra - seated)[100:300, 20:120].mean() > 30, "the second person stands at the left"
    assert np.array_equal(extra[100:300, 300:400], seated[100:300, 300:400]), "behind the candidate, not over him"
    assert scene_image(assets, View(camera="covered"), 0.0).mean() < 40
    knocked = scene_image(assets, View(camera="knocked"), 0.0)
    assert np.abs(knocked - seated).mean() > 40
    talking = [scene_image(assets, View(candidate="franck_talking"), t) for t in (0.0, 0.4)]
    assert np.abs(talking[0] - talking[1])[60:420, 180:480].mean() > 0.5, "talking plays the video's frames"
    assert np.array_equal(seated, scene_image(assets, View(candidate="franck_seated"), 0.4)), "a still pose holds"
