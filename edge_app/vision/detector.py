"""COCO-80 object detector (NanoDet, 416x416) with the decoding done in numpy.

The model file ends at the raw head convolutions (no sigmoid, no softmax), so the float reference
and the int8 model are decoded by the same code. Per stride (8, 16, 32) it has two outputs, both
channels-last: class logits ``[1, G, G, 80]`` and box distributions ``[1, G, G, 44]`` (4 sides x 11
bins; a side's distance is the softmax-weighted bin index times the stride, measured from the cell
centre).

Pre-processing: the frame (or a region of it) is stretched to 416x416 (NanoDet was trained without
keeping the aspect ratio: stretching found more people than letterboxing on the fixture photos),
converted to BGR, normalised with per-channel mean/std and laid out channels-first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_app.vision.preprocess import nms, resize
from edge_app.vision.runtime import PixelInput, TensorSpec, TFLiteModel, dequantized

COCO_LABELS: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed",
    "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave",
    "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)
INPUT_SIZE = 416
STRIDES = (8, 16, 32)
BINS = 11  # distribution bins per box side (reg_max 10)
# quarter turns counter-clockwise (np.rot90's k) as OpenCV's rotations
ROTATIONS = {1: cv2.ROTATE_90_COUNTERCLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_CLOCKWISE}
MEAN_BGR = np.array([103.53, 116.28, 123.675], dtype=np.float32)
STD_BGR = np.array([57.375, 57.12, 58.395], dtype=np.float32)
INPUT_SHAPE = (1, 3, INPUT_SIZE, INPUT_SIZE)
OUTPUT_SHAPES = tuple(
    (1, INPUT_SIZE // s, INPUT_SIZE // s, c) for s in STRIDES for c in (len(COCO_LABELS), 4 * BINS)
)
MAX_DETECTIONS = 100

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Detection:
    label: str
    class_id: int
    score: float
    box: Box  # x1, y1, x2, y2 in frame pixels


@dataclass(frozen=True)
class Stretch:
    """How a frame region was resized (aspect ratio not kept) into the model input."""

    x0: float  # region origin in frame pixels
    y0: float
    sx: float  # model pixels per frame pixel, horizontally
    sy: float  # and vertically
    width: float  # region size in frame pixels (boxes are clipped to it)
    height: float

    def boxes_to_frame(self, boxes: np.ndarray) -> np.ndarray:
        """Map (N, 4) model-pixel boxes to frame pixels, clipped to the region."""
        out = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
        out[:, 0::2] = np.clip(out[:, 0::2] / self.sx, 0, self.width) + self.x0
        out[:, 1::2] = np.clip(out[:, 1::2] / self.sy, 0, self.height) + self.y0
        return out


def _normalise(bgr: np.ndarray) -> np.ndarray:
    return (bgr.astype(np.float32) - MEAN_BGR) / STD_BGR


PIXELS = PixelInput(_normalise, bgr=True, channels_first=True)


def stretch(frame: np.ndarray, region: Box | None = None) -> tuple[np.ndarray, Stretch]:
    """RGB uint8 frame (optionally a region x1, y1, x2, y2 of it) -> 416x416 RGB uint8 and the mapping."""
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an RGB frame (H, W, 3), got shape {frame.shape}")
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = (0, 0, w, h) if region is None else (int(np.rint(v)) for v in region)
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    if x2 - x1 < 2 or y2 - y1 < 2:
        raise ValueError(f"region {region} is empty inside a {w}x{h} frame")
    crop = frame[y1:y2, x1:x2]
    resized = resize(crop, INPUT_SIZE, INPUT_SIZE)
    mapping = Stretch(float(x1), float(y1), INPUT_SIZE / (x2 - x1), INPUT_SIZE / (y2 - y1),
                      float(x2 - x1), float(y2 - y1))
    return resized, mapping


def prepare(frame: np.ndarray, region: Box | None = None) -> tuple[np.ndarray, Stretch]:
    """RGB uint8 frame (optionally a region of it) -> float model input [1, 3, 416, 416] and the mapping."""
    pixels, mapping = stretch(frame, region)
    return PIXELS.reference(pixels), mapping


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return float(np.log(p / (1 - p)))


def decode(outputs: Sequence[np.ndarray], min_score: float,
           specs: Sequence[TensorSpec] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Head outputs -> (boxes (N, 4) in model pixels, class scores (N, 80)) of the cells whose best
    class scores at least ``min_score``. Only those cells are decoded, which keeps this cheap: given the
    outputs as the interpreter stored them and their ``specs``, only those cells are dequantized too (the
    same values as dequantizing everything first)."""
    kinds: Sequence[TensorSpec | None] = [None] * len(outputs) if specs is None else specs
    heads = {tuple(o.shape): (o, spec) for o, spec in zip(outputs, kinds, strict=True)}
    floor = _logit(min_score)
    boxes, scores = [], []
    for stride in STRIDES:
        grid = INPUT_SIZE // stride
        raw_logits, logit_spec = heads[(1, grid, grid, len(COCO_LABELS))]
        raw_logits = raw_logits.reshape(-1, len(COCO_LABELS))
        cells = np.flatnonzero(_values(raw_logits.max(axis=1), logit_spec) >= floor)  # dequantizing keeps order
        if cells.size == 0:
            continue
        logits = _values(raw_logits[cells], logit_spec)
        raw_dist, dist_spec = heads[(1, grid, grid, 4 * BINS)]
        dist = _values(raw_dist.reshape(-1, 4 * BINS)[cells], dist_spec).reshape(-1, 4, BINS)
        dist = np.exp(dist - dist.max(axis=2, keepdims=True))
        sides = (dist / dist.sum(axis=2, keepdims=True)) @ np.arange(BINS, dtype=np.float32) * stride
        cx = (cells % grid + 0.5) * stride
        cy = (cells // grid + 0.5) * stride
        boxes.append(np.stack([cx - sides[:, 0], cy - sides[:, 1], cx + sides[:, 2], cy + sides[:, 3]], axis=1))
        scores.append(1.0 / (1.0 + np.exp(-logits)))
    if not boxes:
        return np.zeros((0, 4), np.float32), np.zeros((0, len(COCO_LABELS)), np.float32)
    return np.concatenate(boxes).astype(np.float32), np.concatenate(scores).astype(np.float32)


def _values(part: np.ndarray, spec: TensorSpec | None) -> np.ndarray:
    """Float values of part of an output: as given (float outputs) or dequantized with its tensor's spec."""
    return part if spec is None else dequantized(spec, part)


def unturned(boxes: np.ndarray, turns: int, side: int) -> np.ndarray:
    """(N, 4) boxes found in a ``side`` x ``side`` square turned ``turns`` quarters counter-clockwise
    (``np.rot90``), in the upright square's pixels."""
    turns %= 4
    if turns == 0 or len(boxes) == 0:
        return boxes
    x1, y1, x2, y2 = boxes.T
    if turns == 1:  # upright (x, y) -> turned (y, side - x)
        return np.stack([side - y2, x1, side - y1, x2], axis=1)
    if turns == 3:  # upright (x, y) -> turned (side - y, x)
        return np.stack([y1, side - x2, y2, side - x1], axis=1)
    return np.stack([side - x2, side - y2, side - x1, side - y1], axis=1)


def select(
    boxes: np.ndarray, scores: np.ndarray, thresholds: np.ndarray, iou_threshold: float,
    max_detections: int = MAX_DETECTIONS,
) -> list[tuple[int, int, float]]:
    """Per-class thresholds and NMS -> (row, class_id, score), best first."""
    rows, classes = np.nonzero(scores >= thresholds[None, :])
    kept: list[tuple[int, int, float]] = []
    for class_id in np.unique(classes):
        members = rows[classes == class_id]
        class_scores = scores[members, class_id]
        for i in nms(boxes[members], class_scores, iou_threshold):
            kept.append((int(members[i]), int(class_id), float(class_scores[i])))
    kept.sort(key=lambda k: -k[2])
    return kept[:max_detections]


class ObjectDetector:
    """NanoDet COCO-80 on one frame: ``detect(frame)`` -> detections in frame pixels."""

    def __init__(
        self,
        model_path: str | Path,
        threads: int = 2,
        runtime: str | None = None,
        score_threshold: float = 0.35,
        iou_threshold: float = 0.5,
        class_thresholds: dict[str, float] | None = None,
    ) -> None:
        self.model = TFLiteModel(model_path, threads=threads, runtime=runtime,
                                 expect_inputs=[INPUT_SHAPE], expect_outputs=OUTPUT_SHAPES)
        unknown = sorted(set(class_thresholds or {}) - set(COCO_LABELS))
        if unknown:
            raise ValueError(f"class_thresholds name unknown labels {unknown}")
        self.thresholds = np.full(len(COCO_LABELS), score_threshold, dtype=np.float32)
        for label, value in (class_thresholds or {}).items():
            self.thresholds[COCO_LABELS.index(label)] = value
        self.iou_threshold = iou_threshold

    def threshold(self, label: str) -> float:
        """The score a detection of ``label`` needs."""
        return float(self.thresholds[COCO_LABELS.index(label)])

    def detect_raw(
        self, frame: np.ndarray, region: Box | None = None, min_score: float | None = None, turns: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Candidate boxes (N, 4) in frame pixels and their 80 class scores (N, 80), before NMS.

        ``region`` (x1, y1, x2, y2 in frame pixels) runs the model on that part of the frame only; ``turns``
        quarter turns counter-clockwise (``np.rot90``'s) show it to the model turned. The model's square input
        is turned, not the region: the same picture as turning first, at the cost of a 416x416 copy.
        """
        pixels, mapping = stretch(frame, region)
        if turns % 4:
            pixels = cv2.rotate(pixels, ROTATIONS[turns % 4])
        floor = float(self.thresholds.min()) if min_score is None else min_score
        boxes, scores = decode(self.model.run_pixels_raw(pixels, PIXELS), floor, self.model.outputs)
        return mapping.boxes_to_frame(unturned(boxes, turns, INPUT_SIZE)), scores

    def detect(
        self, frame: np.ndarray, region: Box | None = None, thresholds: np.ndarray | None = None, turns: int = 0
    ) -> list[Detection]:
        """Detections above their class threshold after per-class NMS, best first.

        ``thresholds`` (80 scores, COCO order) replaces the detector's own for this call only, so callers
        sharing one detector each keep theirs; ``region`` and ``turns`` as in :meth:`detect_raw`.
        """
        limits = self.thresholds if thresholds is None else np.asarray(thresholds, dtype=np.float32)
        if limits.shape != self.thresholds.shape:
            raise ValueError(f"thresholds need {len(COCO_LABELS)} scores in COCO order, got shape {limits.shape}")
        boxes, scores = self.detect_raw(frame, region, float(limits.min()), turns)
        found = []
        for row, c, score in select(boxes, scores, limits, self.iou_threshold):
            x1, y1, x2, y2 = (float(v) for v in boxes[row])
            found.append(Detection(COCO_LABELS[c], c, score, (x1, y1, x2, y2)))
        return found
