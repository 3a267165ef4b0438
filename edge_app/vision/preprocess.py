"""Image pre-processing shared by every model: letterboxing, crops and mapping back to the frame.

Frames are RGB uint8 arrays (H, W, 3). Boxes are (x1, y1, x2, y2) floats in frame pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Letterbox:
    """How a frame was scaled and padded into a model's square input."""

    scale: float  # model pixels per frame pixel
    pad_x: float  # left padding in model pixels
    pad_y: float  # top padding in model pixels

    def to_frame(self, points: np.ndarray) -> np.ndarray:
        """Map (..., 2) x/y points from model pixels to frame pixels."""
        out = np.array(points, dtype=np.float32, copy=True)
        out[..., 0] = (out[..., 0] - self.pad_x) / self.scale
        out[..., 1] = (out[..., 1] - self.pad_y) / self.scale
        return out

    def boxes_to_frame(self, boxes: np.ndarray) -> np.ndarray:
        """Map (N, 4) x1, y1, x2, y2 boxes from model pixels to frame pixels."""
        return self.to_frame(np.asarray(boxes, dtype=np.float32).reshape(-1, 2, 2)).reshape(-1, 4)


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` resized to ``width`` x ``height``: halved by 2x2 averages while it is at least twice the
    target, then bilinear. Close to an area average at a fraction of its cost (an area resize by a
    non-integer factor took ~1.5 ms of a 640x480 frame on the detector's hot path; this takes ~0.2 ms)."""
    while image.shape[1] >= 2 * width and image.shape[0] >= 2 * height:
        h, w = image.shape[:2]
        image = cv2.resize(image[: h - h % 2, : w - w % 2], (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


def letterbox(image: np.ndarray, size: int, pad_value: int = 0, fast: bool = False) -> tuple[np.ndarray, Letterbox]:
    """Scale ``image`` to fit a ``size`` x ``size`` square, keep its aspect ratio, pad the rest. An area average
    by default: the int8 pose model lost face keypoints on a cheaper resize (grace_hopper.jpg's nose 0.38 ->
    0.31). ``fast``: :func:`resize` instead (halvings, then bilinear), a fifth of the time on a 640x480 frame;
    the face detector's faces on it moved by about a pixel (1.1 px median over the scenarios' frames)."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    if fast:
        resized = resize(image, nw, nh)
    else:
        resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    pad_y, pad_x = (size - nh) // 2, (size - nw) // 2
    out = np.full((size, size, image.shape[2]), pad_value, dtype=image.dtype)
    out[pad_y : pad_y + nh, pad_x : pad_x + nw] = resized
    return out, Letterbox(scale=scale, pad_x=float(pad_x), pad_y=float(pad_y))


def square_crop(image: np.ndarray, center: tuple[float, float], side: float, size: int) -> tuple[np.ndarray, Letterbox]:
    """Crop a square of ``side`` frame pixels around ``center`` (padding outside the frame), resized to ``size``."""
    scale = size / side
    x0, y0 = center[0] - side / 2, center[1] - side / 2
    matrix = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], dtype=np.float32)
    crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return crop, Letterbox(scale=scale, pad_x=-x0 * scale, pad_y=-y0 * scale)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) boxes -> (N, M)."""
    a = np.asarray(a, dtype=np.float32).reshape(-1, 4)[:, None, :]
    b = np.asarray(b, dtype=np.float32).reshape(-1, 4)[None, :, :]
    ix = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    iy = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = ix * iy
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Greedy non-maximum suppression; indices of the kept boxes, best first."""
    order = list(np.argsort(-np.asarray(scores)))
    keep: list[int] = []
    boxes = np.asarray(boxes, dtype=np.float32)
    while order:
        best = order.pop(0)
        keep.append(int(best))
        if not order:
            break
        overlaps = iou(boxes[best], boxes[order])[0]
        order = [i for i, o in zip(order, overlaps, strict=True) if o < iou_threshold]
    return keep


def read_rgb(path: str) -> np.ndarray:
    """Read an image file as RGB uint8, with a clear error for a missing or unreadable file."""
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read image {path}: missing, unreadable or not an image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
