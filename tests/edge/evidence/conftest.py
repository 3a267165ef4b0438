"""Frames for the evidence tests: a real photo at camera sizes, each frame marked with its index."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pytest

MARK = 48  # side of the square in the top-left corner whose grey level encodes a frame's index
STEP = 5  # grey levels per frame index


def mark_of(bgr_or_rgb: np.ndarray) -> int:
    """The frame index a (decoded) frame was marked with."""
    return round(float(bgr_or_rgb[8 : MARK - 8, 8 : MARK - 8].mean()) / STEP)


@pytest.fixture(scope="session")
def scene(photo: Callable[[str], np.ndarray]) -> Callable[[int, int], np.ndarray]:
    """scene(width, height) -> a real photo (bus.jpg) at that camera size, RGB uint8."""
    cache: dict[tuple[int, int], np.ndarray] = {}

    def make(width: int = 640, height: int = 480) -> np.ndarray:
        if (width, height) not in cache:
            cache[(width, height)] = cv2.resize(photo("bus.jpg"), (width, height), interpolation=cv2.INTER_AREA)
        return cache[(width, height)]

    return make


@pytest.fixture(scope="session")
def marked(scene: Callable[[int, int], np.ndarray]) -> Callable[..., np.ndarray]:
    """marked(i, width=640, height=480) -> the scene with a grey square saying ``i`` (0..50)."""

    def make(i: int, width: int = 640, height: int = 480) -> np.ndarray:
        image = scene(width, height).copy()
        image[:MARK, :MARK] = STEP * i
        return image

    return make
