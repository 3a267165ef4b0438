"""Object detector (NanoDet): real models on real photos, the numpy decoding, and model-file errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_app.vision.detector import (
    BINS,
    COCO_LABELS,
    INPUT_SIZE,
    OUTPUT_SHAPES,
    PIXELS,
    ROTATIONS,
    STRIDES,
    ObjectDetector,
    Stretch,
    decode,
    prepare,
    select,
    stretch,
    unturned,
)
from edge_app.vision.runtime import ModelError
from tools.fixtures import NO_PEOPLE_PHOTOS, PEOPLE_PHOTOS
from tools.model_build.parity import detector as parity

Photo = Callable[[str], np.ndarray]

def _people(
    detector: ObjectDetector, image: np.ndarray, region: tuple[int, int, int, int] | None = None
) -> list[tuple[float, float, float, float]]:
    return [d.box for d in detector.detect(image, region) if d.label == "person"]


@pytest.mark.parametrize("quant", ["int8", "float"])
@pytest.mark.parametrize(("name", "people"), [("bus.jpg", 4), ("zidane.jpg", 2)])
def test_counts_people(models_dir: Path, photo: Photo, quant: str, runtime: str, name: str, people: int) -> None:
    detector = ObjectDetector(models_dir / f"detector.{quant}.tflite", runtime=runtime)
    assert detector.model.runtime == runtime
    image = photo(name)
    boxes = _people(detector, image)
    assert len(boxes) == people, f"{quant} found {len(boxes)} people on {name}"
    h, w = image.shape[:2]
    for x1, y1, x2, y2 in boxes:
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        assert (y2 - y1) > 0.25 * h, "people on these photos are at least a quarter of the frame tall"


def test_int8_model_is_integer(models_dir: Path) -> None:
    model = ObjectDetector(models_dir / "detector.int8.tflite").model
    assert model.quantized
    assert {s.dtype for s in model.inputs + model.outputs} == {np.dtype(np.int8)}
    tensors = model._interpreter.get_tensor_details()
    assert not [t["name"] for t in tensors if t["dtype"] == np.float32], "full-integer: no float tensor"


def test_detections_are_sorted_labelled_and_above_threshold(models_dir: Path, photo: Photo) -> None:
    detector = ObjectDetector(models_dir / "detector.int8.tflite", class_thresholds={"bus": 0.6})
    found = detector.detect(photo("bus.jpg"))
    assert [d.score for d in found] == sorted((d.score for d in found), reverse=True)
    for d in found:
        assert COCO_LABELS[d.class_id] == d.label
        assert d.score >= detector.threshold(d.label)
    assert detector.threshold("bus") == pytest.approx(0.6)
    assert any(d.label == "bus" for d in found)


def test_region_maps_back_to_the_frame(models_dir: Path, photo: Photo) -> None:
    detector = ObjectDetector(models_dir / "detector.int8.tflite")
    image = photo("zidane.jpg")
    h, w = image.shape[:2]
    right = (w // 2, 0, w, h)
    boxes = _people(detector, image)
    inside = _people(detector, image, right)
    assert inside, "the person on the right half is found in the region"
    for x1, _, x2, _ in inside:
        assert right[0] <= x1 < x2 <= w
    # The region's best person is the whole-frame person on the right (same box within a few percent).
    best = max(boxes, key=lambda b: b[0])
    assert max(abs(a - b) for a, b in zip(inside[0], best, strict=True)) < 0.08 * w


def test_parity_gate_passes(models_dir: Path, photo: Photo) -> None:
    photos = {name: photo(name) for name in PEOPLE_PHOTOS + NO_PEOPLE_PHOTOS[:2]}
    result = parity.check(models_dir / "detector.float.tflite", models_dir / "detector.int8.tflite", photos)
    assert result.passed, result.failures
    assert result.figures["people_float"] >= 13
    # the counts differ only by boxes at the threshold's edge (box_parity's band)
    borderline = sum(len(p["borderline"]) for p in result.figures["photos"].values() if p["gated"])
    assert abs(result.figures["people_float"] - result.figures["people_int8"]) <= borderline <= 2
    assert result.figures["min_iou"] >= parity.MIN_IOU
    assert parity.MANIFEST["labels"] == list(COCO_LABELS)


# --- model-file errors ---------------------------------------------------------------------------

def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"detector\.int8\.tflite does not exist"):
        ObjectDetector(tmp_path / "detector.int8.tflite")


def test_corrupt_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "detector.int8.tflite"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ModelError, match=r"detector\.int8\.tflite is not a loadable TFLite model"):
        ObjectDetector(path)


def test_wrong_model_names_the_file(models_dir: Path) -> None:
    with pytest.raises(ModelError, match=r"pose\.int8\.tflite has input shapes .*expected \[\(1, 3, 416, 416\)\]"):
        ObjectDetector(models_dir / "pose.int8.tflite")


def test_unknown_class_threshold_is_refused(models_dir: Path) -> None:
    with pytest.raises(ValueError, match="smartphone"):
        ObjectDetector(models_dir / "detector.int8.tflite", class_thresholds={"smartphone": 0.2})


# --- pure decoding logic -------------------------------------------------------------------------

def _outputs(stride: int, cell: tuple[int, int], class_id: int, sides: tuple[int, int, int, int]) -> list[np.ndarray]:
    """Head outputs with one confident cell whose four distributions peak at the given bins."""
    outputs = []
    for shape in OUTPUT_SHAPES:
        fill = -10.0 if shape[-1] == len(COCO_LABELS) else 0.0
        outputs.append(np.full(shape, fill, dtype=np.float32))
    level = STRIDES.index(stride)
    cls, box = outputs[2 * level], outputs[2 * level + 1]
    row, col = cell
    cls[0, row, col, class_id] = 4.0
    for side, bin_index in enumerate(sides):
        box[0, row, col, side * BINS + bin_index] = 30.0  # softmax ~ one-hot
    return outputs


@pytest.mark.parametrize(
    ("stride", "cell", "sides"),
    [(8, (0, 0), (0, 0, 1, 1)), (8, (10, 20), (3, 2, 5, 7)), (16, (25, 3), (10, 10, 0, 0)), (32, (6, 6), (4, 4, 4, 4))],
)
def test_decode_places_boxes_from_cell_centre_and_bins(
    stride: int, cell: tuple[int, int], sides: tuple[int, int, int, int]
) -> None:
    boxes, scores = decode(_outputs(stride, cell, 67, sides), min_score=0.5)
    assert boxes.shape == (1, 4) and scores.shape == (1, len(COCO_LABELS))
    cx, cy = (cell[1] + 0.5) * stride, (cell[0] + 0.5) * stride
    expected = [cx - sides[0] * stride, cy - sides[1] * stride, cx + sides[2] * stride, cy + sides[3] * stride]
    np.testing.assert_allclose(boxes[0], expected, atol=1e-3)
    assert int(np.argmax(scores[0])) == 67 and scores[0, 67] == pytest.approx(1 / (1 + np.exp(-4.0)), rel=1e-5)


@pytest.mark.parametrize("min_score", [0.05, 0.35])
def test_decoding_the_int8_outputs_dequantizes_only_the_kept_cells_to_the_same_values(
    models_dir: Path, photo: Photo, min_score: float
) -> None:
    model = ObjectDetector(models_dir / "detector.int8.tflite").model
    pixels, _ = stretch(photo("bus.jpg"))
    raw = model.run_pixels_raw(pixels, PIXELS)
    assert {o.dtype for o in raw} == {np.dtype(np.int8)}
    boxes, scores = decode(raw, min_score, model.outputs)
    every_boxes, every_scores = decode(model.dequantize(raw), min_score)
    assert len(boxes) > 4  # the bus and its four people at least
    np.testing.assert_array_equal(boxes, every_boxes)
    np.testing.assert_array_equal(scores, every_scores)


def test_decode_skips_cells_below_the_floor() -> None:
    boxes, scores = decode(_outputs(8, (1, 1), 0, (1, 1, 1, 1)), min_score=0.99)
    assert boxes.shape == (0, 4) and scores.shape == (0, len(COCO_LABELS))


BOX_A = (10.0, 10.0, 110.0, 110.0)
BOX_B = (20.0, 20.0, 120.0, 120.0)  # IoU with A = 0.68
BOX_C = (300.0, 300.0, 350.0, 350.0)


@pytest.mark.parametrize(
    ("boxes", "scores", "iou", "expected"),
    [
        ([BOX_A, BOX_B], [(0, 0.9), (0, 0.8)], 0.5, [(0, 0)]),  # same class, overlapping: one kept
        ([BOX_A, BOX_B], [(0, 0.9), (0, 0.8)], 0.7, [(0, 0), (1, 0)]),  # overlap below the NMS IoU
        ([BOX_A, BOX_B], [(0, 0.9), (67, 0.8)], 0.5, [(0, 0), (1, 67)]),  # different classes: per-class NMS
        ([BOX_A, BOX_C], [(0, 0.3), (0, 0.8)], 0.5, [(1, 0)]),  # below the threshold
        ([BOX_A, BOX_C], [(67, 0.3), (0, 0.8)], 0.5, [(1, 0), (0, 67)]),  # phone threshold 0.25
    ],
)
def test_select_thresholds_and_per_class_nms(
    boxes: list[tuple[float, ...]], scores: list[tuple[int, float]], iou: float, expected: list[tuple[int, int]]
) -> None:
    table = np.zeros((len(boxes), len(COCO_LABELS)), dtype=np.float32)
    for row, (class_id, score) in enumerate(scores):
        table[row, class_id] = score
    thresholds = np.full(len(COCO_LABELS), 0.35, dtype=np.float32)
    thresholds[COCO_LABELS.index("cell phone")] = 0.25
    kept = select(np.array(boxes, dtype=np.float32), table, thresholds, iou)
    assert [(row, class_id) for row, class_id, _ in kept] == expected


@pytest.mark.parametrize(
    ("shape", "region"),
    [((480, 640), None), ((1080, 810), None), ((720, 1280), (640, 0, 1280, 720)), ((100, 100), (-20, 10, 60, 200))],
)
def test_prepare_stretches_and_maps_back(shape: tuple[int, int], region: tuple[int, int, int, int] | None) -> None:
    frame = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    tensor, stretch = prepare(frame, region)
    assert tensor.shape == (1, 3, INPUT_SIZE, INPUT_SIZE) and tensor.dtype == np.float32
    assert tensor.min() > -2.5 and tensor.max() < 2.7  # (x - mean) / std of 0..255
    h, w = shape
    x1, y1, x2, y2 = (0, 0, w, h) if region is None else (max(0, region[0]), max(0, region[1]),
                                                          min(w, region[2]), min(h, region[3]))
    corners = stretch.boxes_to_frame(np.array([[0, 0, INPUT_SIZE, INPUT_SIZE], [-50, -50, 500, 500]]))
    np.testing.assert_allclose(corners, [[x1, y1, x2, y2], [x1, y1, x2, y2]], atol=1e-3)  # clipped to the region


def test_prepare_uses_bgr_mean_std_channels_first() -> None:
    frame = np.zeros((8, 8, 3), dtype=np.uint8)
    frame[..., 0] = 255  # pure red
    tensor, _ = prepare(frame)
    np.testing.assert_allclose(tensor[0, :, 0, 0], [-103.53 / 57.375, -116.28 / 57.12, (255 - 123.675) / 58.395],
                               rtol=1e-5)


def test_stretch_scales_each_axis() -> None:
    stretch = Stretch(x0=100, y0=50, sx=0.5, sy=2.0, width=800, height=200)
    np.testing.assert_allclose(stretch.boxes_to_frame(np.array([[10, 10, 20, 20]])), [[120, 55, 140, 60]])


@pytest.mark.parametrize("region", [(10, 10, 11, 400), (500, 0, 600, 100)])
def test_empty_region_is_refused(region: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValueError, match="empty"):
        prepare(np.zeros((100, 400, 3), dtype=np.uint8), region)


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
@pytest.mark.parametrize("box", [(10, 5, 30, 45), (0, 0, 7, 3), (50, 20, 64, 48)])
def test_a_box_found_in_the_turned_input_maps_back_to_the_upright_pixels(turns: int, box: tuple[int, ...]) -> None:
    side = 64
    upright = np.zeros((side, side), np.uint8)
    upright[box[1]:box[3], box[0]:box[2]] = 1
    turned = np.rot90(upright, turns)
    if turns:  # the detector turns its input with OpenCV: the same quarter turns as np.rot90
        assert np.array_equal(cv2.rotate(upright, ROTATIONS[turns]), turned)
    ys, xs = np.nonzero(turned)
    found = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
    assert unturned(found, turns, side)[0] == pytest.approx(box)
    assert unturned(np.zeros((0, 4), np.float32), turns, side).shape == (0, 4)
