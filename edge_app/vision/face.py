"""Faces: BlazeFace detection (MediaPipe back-camera model, 256x256) and FaceMesh landmarks (468 points).

Both models end at raw tensors; everything after them is numpy here, so the float reference and the
int8 file share one decoder.

Input ranges were checked on the fixture photos: the detector found the same boxes (within 1-2 px)
with [0, 1] as with [-1, 1], and [-1, 1] (MediaPipe's range) scored true faces a little higher; the
landmark model with [-1, 1] instead of [0, 1] dropped a turned face's presence from 0.26 to 0.01.

Detector: letterboxed RGB frame scaled to [-1, 1]. 896 anchors, one per output row: a 16x16 grid
(stride 16) with 2 anchors per cell, then an 8x8 grid (stride 32) with 6 per cell, centred on the
cells. Each row holds a score logit and 16 regressors in input pixels: box centre offset (x, y), box
width and height, then six keypoints as offsets from the anchor centre. Both are bounded in the
graph (logits >= -16, regressors within +-256 px) so int8 keeps a fine output scale. Boxes above the score
threshold are merged by weighted non-maximum suppression (as MediaPipe does) and mapped to the frame.

Landmarks: a square crop of 1.5x the detector box around its centre, rotated so that the eyes are
level, RGB scaled to [0, 1]. The mesh output is 468 x (x, y, z) in crop pixels (z on the x scale,
smaller = nearer the camera); the face-flag logit gives the face-presence probability.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from edge_app.vision.headpose import head_pose, mouth_open_ratio
from edge_app.vision.preprocess import Letterbox, iou, letterbox
from edge_app.vision.runtime import PixelInput, TFLiteModel, run_image

DETECTOR_SIZE = 256
DETECTOR_STRIDES = ((16, 2), (32, 6))  # (stride, anchors per cell)
DETECTOR_OUTPUTS = ((1, 512, 1), (1, 384, 1), (1, 512, 16), (1, 384, 16))
KEYPOINTS = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear", "left_ear")  # the subject's sides
LANDMARK_SIZE = 192
LANDMARK_OUTPUTS = ((1, 1404), (1, 1, 1, 1))
CROP_SCALE = 1.5  # landmark crop side / detector box side
# The detector graph ends in fused ReLUs that bound its outputs for int8 (see recipes/face_detector.py):
# scores come out as relu(logit + LOGIT_SHIFT), regressors as relu6(value / REGRESSOR_UNIT + 3).
LOGIT_SHIFT = 16.0
REGRESSOR_UNIT = 256.0 / 3.0  # regressors are kept within +-256 input pixels


class Runnable(Protocol):
    """A loaded model: float inputs in, float32 outputs out (TFLiteModel, or TensorFlow's in the converter)."""

    runtime: str

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]: ...


def load(
    model: str | Path | Runnable,
    threads: int,
    runtime: str | None,
    input_shape: tuple[int, ...],
    output_shapes: tuple[tuple[int, ...], ...],
) -> Runnable:
    """Open a model file with the shapes the decoder needs (ModelError otherwise); pass loaded models through."""
    if isinstance(model, str | Path):
        return TFLiteModel(model, threads=threads, runtime=runtime, expect_inputs=[input_shape],
                           expect_outputs=output_shapes)
    return model


@dataclass(frozen=True, eq=False)
class Face:
    """One face in frame pixels. Angles in degrees, see :func:`edge_app.vision.headpose.head_pose`."""

    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    score: float  # detector confidence
    keypoints: np.ndarray  # (6, 2) x, y in KEYPOINTS order
    landmarks: np.ndarray | None = None  # (468, 3) x, y, z in frame pixels
    presence: float | None = None  # landmark model's face-presence probability
    yaw: float | None = None
    pitch: float | None = None
    roll: float | None = None
    mouth_open: float | None = None  # inner-lip gap / mouth width

    @property
    def center(self) -> tuple[float, float]:
        return (self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2

    @property
    def side(self) -> float:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


def face_anchors(size: int = DETECTOR_SIZE, strides: tuple[tuple[int, int], ...] = DETECTOR_STRIDES) -> np.ndarray:
    """Anchor centres (N, 2) in input pixels, in the models' output row order."""
    rows = []
    for stride, per_cell in strides:
        cells = size // stride
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        centres = (np.stack([xs, ys], axis=-1).reshape(-1, 2) + 0.5) * stride
        rows.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(rows).astype(np.float32)


DETECTOR_PIXELS = PixelInput(lambda rgb: rgb.astype(np.float32) / 127.5 - 1.0)  # [-1, 1]
LANDMARK_PIXELS = PixelInput(lambda rgb: rgb.astype(np.float32) / 255.0)  # [0, 1]


def detector_input(frame: np.ndarray) -> tuple[np.ndarray, Letterbox]:
    """Letterbox an RGB frame to 256x256 and scale it to [-1, 1]."""
    image, box = letterbox(frame, DETECTOR_SIZE, fast=True)
    return DETECTOR_PIXELS.reference(image), box


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0)))


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[tuple[int, np.ndarray]]:
    """MediaPipe-style weighted NMS: each kept box is the score-weighted mean of the boxes it suppresses.

    ``boxes`` is (N, K) with x1, y1, x2, y2 first (extra columns, e.g. keypoints, are averaged too).
    Returns (index of the best box, merged row) pairs, best first.
    """
    order = np.argsort(-scores)
    kept: list[tuple[int, np.ndarray]] = []
    while order.size:
        best = int(order[0])
        overlap = iou(boxes[best, :4], boxes[order, :4])[0]
        overlap[0] = 1.0  # the best box always belongs to its own group, even with zero area
        group = order[overlap >= threshold]
        weights = scores[group][:, None]
        kept.append((best, (boxes[group] * weights).sum(axis=0) / weights.sum()))
        order = order[overlap < threshold]
    return kept


def decode_faces(
    logits: np.ndarray,
    regressors: np.ndarray,
    anchors: np.ndarray,
    box: Letterbox,
    score_threshold: float,
    iou_threshold: float = 0.3,
) -> list[Face]:
    """Raw detector outputs (N,) and (N, 16) -> faces in frame pixels, best first."""
    scores = sigmoid(logits)
    hits = np.flatnonzero(scores >= score_threshold)
    if hits.size == 0:
        return []
    reg, centre = regressors[hits], anchors[hits]
    mid = centre + reg[:, 0:2]
    half = reg[:, 2:4] / 2
    points = centre[:, None, :] + reg[:, 4:16].reshape(-1, 6, 2)
    rows = np.concatenate([mid - half, mid + half, points.reshape(-1, 12)], axis=1)
    faces = []
    for index, merged in weighted_nms(rows, scores[hits], iou_threshold):
        corners = box.to_frame(merged[:4].reshape(2, 2)).reshape(4)
        faces.append(
            Face(
                box=(float(corners[0]), float(corners[1]), float(corners[2]), float(corners[3])),
                score=float(scores[hits][index]),
                keypoints=box.to_frame(merged[4:].reshape(6, 2)),
            )
        )
    return faces


class FaceDetector:
    """BlazeFace (back camera): ``detect(frame_rgb) -> list[Face]`` in frame pixels, best first."""

    def __init__(
        self,
        model_path: str | Path | Runnable,
        threads: int = 2,
        runtime: str | None = None,
        score_threshold: float = 0.5,
        iou_threshold: float = 0.3,
    ) -> None:
        self.model = load(model_path, threads, runtime, (1, DETECTOR_SIZE, DETECTOR_SIZE, 3), DETECTOR_OUTPUTS)
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        self.anchors = face_anchors()

    def raw(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, Letterbox]:
        """Score logits (896,), regressors (896, 16) and the letterbox used."""
        image, box = letterbox(frame, DETECTOR_SIZE, fast=True)
        out = {o.shape: o for o in run_image(self.model, image, DETECTOR_PIXELS)}
        logits = np.concatenate([out[(1, 512, 1)][0, :, 0], out[(1, 384, 1)][0, :, 0]]) - LOGIT_SHIFT
        regressors = (np.concatenate([out[(1, 512, 16)][0], out[(1, 384, 16)][0]]) - 3.0) * REGRESSOR_UNIT
        return logits, regressors, box

    def detect(self, frame: np.ndarray) -> list[Face]:
        logits, regressors, box = self.raw(frame)
        return decode_faces(logits, regressors, self.anchors, box, self.score_threshold, self.iou_threshold)


def landmark_crop(frame: np.ndarray, face: Face, size: int = LANDMARK_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Square crop (CROP_SCALE x the box, eyes level) -> (crop RGB uint8, 2x3 frame->crop affine matrix)."""
    eyes = face.keypoints[1] - face.keypoints[0]
    angle = float(np.arctan2(eyes[1], eyes[0]))
    scale = size / (face.side * CROP_SCALE)
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    centre = np.array(face.center)
    linear = np.array([[cos, sin], [-sin, cos]])
    matrix = np.hstack([linear, (size / 2 - linear @ centre)[:, None]]).astype(np.float32)
    crop = cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return crop, matrix


def landmark_input(crop: np.ndarray) -> np.ndarray:
    return LANDMARK_PIXELS.reference(crop)


def decode_landmarks(mesh: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Mesh output (1404,) in crop pixels -> (468, 3) in frame pixels (z scaled like x and y)."""
    points = np.asarray(mesh, dtype=np.float32).reshape(468, 3)
    inverse = cv2.invertAffineTransform(matrix)
    out = np.empty_like(points)
    out[:, :2] = points[:, :2] @ inverse[:, :2].T + inverse[:, 2]
    out[:, 2] = points[:, 2] * float(np.hypot(inverse[0, 0], inverse[0, 1]))
    return out


class FaceLandmarker:
    """FaceMesh: ``landmarks(frame_rgb, face) -> Face`` with landmarks, presence, head pose, mouth opening."""

    def __init__(self, model_path: str | Path | Runnable, threads: int = 2, runtime: str | None = None) -> None:
        self.model = load(model_path, threads, runtime, (1, LANDMARK_SIZE, LANDMARK_SIZE, 3), LANDMARK_OUTPUTS)

    def landmarks(self, frame: np.ndarray, face: Face) -> Face:
        crop, matrix = landmark_crop(frame, face)
        out = {o.shape: o for o in run_image(self.model, crop, LANDMARK_PIXELS)}
        points = decode_landmarks(out[(1, 1404)][0], matrix)
        yaw, pitch, roll = head_pose(points, frame.shape)
        return replace(
            face,
            landmarks=points,
            presence=float(sigmoid(out[(1, 1, 1, 1)].reshape(()))),
            yaw=yaw,
            pitch=pitch,
            roll=roll,
            mouth_open=mouth_open_ratio(points),
        )
