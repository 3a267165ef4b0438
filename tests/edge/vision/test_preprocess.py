"""The shared image preparation: the detector's resize and the letterbox."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_app.vision.preprocess import letterbox, resize


def _image(height: int, width: int) -> np.ndarray:
    """A smooth scene with some texture: what a camera gives, not white noise."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = [128 + 100 * np.sin(x / 17 + c) * np.cos(y / 23 - c) for c in range(3)]
    return np.clip(np.stack(channels, axis=2), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(("size", "target"), [((832, 832), (416, 416)), ((960, 1280), (320, 240))])
def test_resize_by_whole_halvings_is_the_area_average(size: tuple[int, int], target: tuple[int, int]) -> None:
    image = _image(*size)
    expected = cv2.resize(image, target, interpolation=cv2.INTER_AREA)
    # one halving is the area average itself; two round twice, so a level may differ by one
    assert np.abs(resize(image, *target).astype(np.int16) - expected).max() <= 1


@pytest.mark.parametrize(
    ("size", "target"),
    [((480, 640), (416, 416)), ((720, 1280), (416, 416)), ((1081, 1919), (416, 416)), ((120, 90), (416, 416))],
)
def test_resize_stays_close_to_the_area_average(size: tuple[int, int], target: tuple[int, int]) -> None:
    image = _image(*size)
    got = resize(image, *target)
    assert got.shape == (target[1], target[0], 3) and got.dtype == np.uint8
    reference = cv2.resize(image, target, interpolation=cv2.INTER_AREA)
    assert np.abs(got.astype(np.int16) - reference.astype(np.int16)).mean() < 2.0


def test_letterbox_keeps_the_aspect_ratio_and_maps_back() -> None:
    image = _image(480, 640)
    boxed, mapping = letterbox(image, 256)
    assert boxed.shape == (256, 256, 3)
    assert (boxed[:32] == 0).all() and (boxed[-32:] == 0).all()  # 640x480 -> 256x192, padded top and bottom
    corners = mapping.to_frame(np.array([[[0.0, 32.0], [256.0, 224.0]]], dtype=np.float32))
    assert np.allclose(corners, [[[0, 0], [640, 480]]], atol=1e-3)


def test_a_fast_letterbox_has_the_same_geometry_and_nearly_the_same_pixels() -> None:
    image = _image(480, 640)
    area, area_mapping = letterbox(image, 256)
    fast, fast_mapping = letterbox(image, 256, fast=True)
    assert fast.shape == area.shape and fast_mapping == area_mapping
    assert (fast[:32] == 0).all() and (fast[-32:] == 0).all()
    assert np.abs(fast.astype(np.int16) - area.astype(np.int16))[32:224].mean() < 2.0
