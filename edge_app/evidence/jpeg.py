"""Frame checks and JPEG encoding shared by the ring, snapshots and clips (OpenCV works in BGR)."""

from __future__ import annotations

import cv2
import numpy as np

from edge_app.evidence.errors import EvidenceError


def check_rgb(image: object, what: str = "image") -> np.ndarray:
    """Return ``image`` if it is an RGB uint8 array (H, W, 3); otherwise raise a specific :class:`EvidenceError`."""
    if not isinstance(image, np.ndarray):
        raise EvidenceError(f"{what} must be an RGB uint8 numpy array (H, W, 3), got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise EvidenceError(f"{what} must be an RGB uint8 array (H, W, 3), got {image.dtype} {image.shape}")
    return image


def fit_bgr(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """BGR copy of an RGB frame scaled down so neither side exceeds ``max_side``; also the scale applied."""
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    return bgr, scale


def encode_jpeg(bgr: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of a BGR frame."""
    ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise EvidenceError(f"OpenCV could not JPEG-encode a {bgr.shape} frame")
    return buffer.tobytes()


def decode_jpeg(data: bytes) -> np.ndarray:
    """BGR frame of JPEG bytes."""
    frame = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if frame is None:
        raise EvidenceError(f"{len(data)} bytes in the ring are not a decodable JPEG")
    return frame
