"""Pose (MoveNet Lightning): real models on real photos, the numpy decoding, and model-file errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_app.vision.pose import (
    GRID,
    HEAD_CLAMPS,
    HEAD_SHAPES,
    INPUT_SIZE,
    KEYPOINT_NAMES,
    Keypoint,
    Pose,
    PoseEstimator,
    decode,
    prepare,
)
from edge_app.vision.preprocess import letterbox, square_crop
from edge_app.vision.runtime import ModelError
from tools.fixtures import PEOPLE_PHOTOS
from tools.model_build.parity import pose as parity

Photo = Callable[[str], np.ndarray]
FACE = ("nose", "left_eye", "right_eye")


@pytest.mark.parametrize("quant", ["int8", "float"])
@pytest.mark.parametrize("name", ["astronaut.png", "grace_hopper.jpg"])
def test_portrait_is_plausible(models_dir: Path, photo: Photo, quant: str, runtime: str, name: str) -> None:
    estimator = PoseEstimator(models_dir / f"pose.{quant}.tflite", runtime=runtime)
    pose = estimator.estimate(photo(name))
    nose, left_eye, right_eye = (pose.get(k) for k in FACE)
    left_shoulder, right_shoulder = pose.get("left_shoulder"), pose.get("right_shoulder")
    assert np.mean([k.score for k in (nose, left_eye, right_eye)]) >= 0.5
    assert min(k.score for k in (nose, left_eye, right_eye)) >= 0.35
    # The subject faces the camera: their left eye and shoulder are on the image's right.
    assert right_eye.x < nose.x < left_eye.x
    assert right_shoulder.x < nose.x < left_shoulder.x
    assert max(left_eye.y, right_eye.y) < nose.y < min(left_shoulder.y, right_shoulder.y)
    assert abs(left_eye.y - right_eye.y) < 0.1 * photo(name).shape[0]


@pytest.mark.parametrize("quant", ["int8", "float"])
def test_box_finds_a_small_person(models_dir: Path, photo: Photo, quant: str) -> None:
    """A person 160 px tall in a 1280x960 frame: the box crop recovers the full-size pose."""
    estimator = PoseEstimator(models_dir / f"pose.{quant}.tflite")
    portrait = photo("grace_hopper.jpg")
    reference = estimator.estimate(portrait)
    scale = 160 / portrait.shape[0]
    small = cv2.resize(portrait, (round(portrait.shape[1] * scale), 160), interpolation=cv2.INTER_AREA)
    frame = np.full((960, 1280, 3), 90, dtype=np.uint8)
    x0, y0 = 1000, 700
    frame[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
    boxed = estimator.estimate(frame, box=(x0, y0, x0 + small.shape[1], y0 + small.shape[0]))
    whole = estimator.estimate(frame)
    for name in (*FACE, "left_shoulder", "right_shoulder"):
        expected = np.array([reference.get(name).x * scale + x0, reference.get(name).y * scale + y0])
        found = boxed.get(name)
        assert np.linalg.norm([found.x - expected[0], found.y - expected[1]]) < 10, name  # 6% of 160 px
    assert np.mean([boxed.get(k).score for k in FACE]) > np.mean([whole.get(k).score for k in FACE]) + 0.15


def test_int8_model_has_integer_io(models_dir: Path) -> None:
    model = PoseEstimator(models_dir / "pose.int8.tflite").model
    assert {s.dtype for s in model.inputs + model.outputs} == {np.dtype(np.int8)}
    floats = [t["name"] for t in model._interpreter.get_tensor_details() if t["dtype"] == np.float32]
    assert floats and all("expanded_conv_depthwise" in n or "dequantize" in n for n in floats), floats


def test_parity_gate_passes(models_dir: Path, photo: Photo) -> None:
    photos = {name: photo(name) for name in PEOPLE_PHOTOS}
    result = parity.check(models_dir / "pose.float.tflite", models_dir / "pose.int8.tflite", photos)
    assert result.passed, result.failures
    assert result.figures["confident_keypoints"] >= 40
    assert result.figures["max_distance"] <= parity.MAX_DISTANCE
    assert 0.8 <= result.figures["score_ratio"] <= 1.25
    assert parity.MANIFEST["labels"] == list(KEYPOINT_NAMES)


# --- model-file errors ---------------------------------------------------------------------------

def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"pose\.int8\.tflite does not exist"):
        PoseEstimator(tmp_path / "pose.int8.tflite")


def test_corrupt_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "pose.int8.tflite"
    path.write_bytes(np.random.default_rng(2).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ModelError, match=r"pose\.int8\.tflite is not a loadable TFLite model"):
        PoseEstimator(path)


def test_wrong_model_names_the_file(models_dir: Path) -> None:
    with pytest.raises(ModelError, match=r"detector\.int8\.tflite has input shapes .*expected \[\(1, 192, 192, 3\)\]"):
        PoseEstimator(models_dir / "detector.int8.tflite")


# --- pure decoding logic -------------------------------------------------------------------------

def _clamp(head: str, value: np.ndarray) -> np.ndarray:
    gain, shift, op = HEAD_CLAMPS[head]
    out = np.maximum(gain * value + shift, 0)
    return np.minimum(out, 6) if op == "Relu6" else out


def _heads(centre: tuple[int, int], keypoint: tuple[int, int], offset: tuple[float, float]) -> list[np.ndarray]:
    """Head outputs (as a model file gives them) for one person: every keypoint at ``keypoint``."""
    heat = np.full(HEAD_SHAPES["heatmap"], -6.0, dtype=np.float32)
    heat[0, keypoint[0], keypoint[1], :] = 3.0
    cen = np.full(HEAD_SHAPES["centre"], -6.0, dtype=np.float32)
    cen[0, centre[0], centre[1], 0] = 3.0
    regress = np.zeros(HEAD_SHAPES["regress"], dtype=np.float32)
    regress[0, centre[0], centre[1], 0::2] = keypoint[0] - centre[0]
    regress[0, centre[0], centre[1], 1::2] = keypoint[1] - centre[1]
    off = np.zeros(HEAD_SHAPES["offset"], dtype=np.float32)
    off[0, keypoint[0], keypoint[1], 0::2] = offset[0]
    off[0, keypoint[0], keypoint[1], 1::2] = offset[1]
    return [_clamp(h, v) for h, v in zip(("heatmap", "centre", "regress", "offset"), (heat, cen, regress, off),
                                          strict=True)]


@pytest.mark.parametrize(
    ("centre", "keypoint", "offset"),
    [((24, 24), (24, 24), (0.0, 0.0)), ((20, 30), (10, 35), (0.5, 0.25)), ((30, 10), (47, 0), (-0.5, 1.5))],
)
def test_decode_follows_centre_regression_and_offset(
    centre: tuple[int, int], keypoint: tuple[int, int], offset: tuple[float, float]
) -> None:
    out = decode(*_heads(centre, keypoint, offset))
    cell = INPUT_SIZE / GRID
    np.testing.assert_allclose(out[:, 0], (keypoint[1] + offset[1]) * cell, atol=1e-3)
    np.testing.assert_allclose(out[:, 1], (keypoint[0] + offset[0]) * cell, atol=1e-3)
    np.testing.assert_allclose(out[:, 2], 1 / (1 + np.exp(-3.0)), rtol=1e-5)


def test_decode_prefers_the_peak_near_the_regressed_guess() -> None:
    heads = _heads((24, 24), (30, 24), (0.0, 0.0))
    heat = heads[0]
    heat[0, 5, 5, :] = _clamp("heatmap", np.float32(3.5))  # a slightly stronger but far-away peak
    out = decode(*heads)
    np.testing.assert_allclose(out[:, 1], 30 * INPUT_SIZE / GRID, atol=1e-3)


@pytest.mark.parametrize(
    ("shape", "points"),
    [((480, 640), [(0, 0), (639, 479), (320, 240)]), ((1080, 810), [(10, 1000), (800, 5)]), ((50, 300), [(150, 25)])],
)
def test_letterbox_round_trip(shape: tuple[int, int], points: list[tuple[int, int]]) -> None:
    frame = np.zeros((*shape, 3), dtype=np.uint8)
    image, mapping = letterbox(frame, INPUT_SIZE)
    assert image.shape == (INPUT_SIZE, INPUT_SIZE, 3)
    model_points = np.array([[x * mapping.scale + mapping.pad_x, y * mapping.scale + mapping.pad_y] for x, y in points])
    np.testing.assert_allclose(mapping.to_frame(model_points), points, atol=1e-3)


@pytest.mark.parametrize(
    ("box", "point"),
    [((100, 50, 200, 250), (150, 150)), ((0, 0, 40, 40), (5, 35)), ((600, 400, 640, 480), (630, 470))],
)
def test_box_crop_round_trip(box: tuple[int, int, int, int], point: tuple[int, int]) -> None:
    frame = np.zeros((480, 640, 3), dtype=np.uint8)
    frame[point[1], point[0]] = 255
    tensor, mapping = prepare(frame, box)
    assert tensor.shape == (1, INPUT_SIZE, INPUT_SIZE, 3)
    y, x = np.unravel_index(np.argmax(tensor[0, ..., 0]), tensor.shape[1:3])
    back = mapping.to_frame(np.array([[x, y]], dtype=np.float32))[0]
    side = max(box[2] - box[0], box[3] - box[1]) * 1.25
    assert np.linalg.norm(back - point) <= side / INPUT_SIZE + 1.0  # within one model pixel
    crop, _ = square_crop(frame, ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), side, INPUT_SIZE)
    np.testing.assert_array_equal(crop.astype(np.float32), tensor[0])


def test_pose_get_by_name() -> None:
    pose = Pose(tuple(Keypoint(n, float(i), float(2 * i), 0.5) for i, n in enumerate(KEYPOINT_NAMES)), 0.5)
    assert pose.get("left_wrist").x == KEYPOINT_NAMES.index("left_wrist")
    assert pose.as_array().shape == (17, 3)
    with pytest.raises(KeyError, match="left_paw"):
        pose.get("left_paw")


def test_empty_box_is_refused() -> None:
    with pytest.raises(ValueError, match="empty person box"):
        prepare(np.zeros((100, 100, 3), dtype=np.uint8), (50, 50, 50, 80))
