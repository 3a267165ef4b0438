"""Image statistics for camera tampering: covered/dark, blurred, moved from the calibrated view.

Cheap enough for every frame: everything works on a small grey copy. The seat zone is masked out of
the view comparison (and from sharpness) so the candidate moving, leaving or someone walking by does
not read as "moved" or "blurred";
when the view around the seat is too small or too bare to compare (the candidate fills the picture, a
blank wall), "moved" is not judged at all rather than mistaking the candidate for the scenery.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge_app.rules.observation import Box, ViewStats

SMALL = (160, 120)  # width, height of the grey copy
LAYOUT = (40, 30)  # the layout image compared with the reference
MIN_STRUCTURE = 5.0  # layout spread outside the candidate below this: too bare to tell a moved camera
MIN_AREA = 0.05  # share of the view outside the candidate below this: too little to tell a moved camera
CANDIDATE_MARGIN = 0.05  # the candidate's calibration box is grown by this share before it is masked


def grey_small(frame: np.ndarray) -> np.ndarray:
    return cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), SMALL, interpolation=cv2.INTER_AREA)


def sharpness(grey: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Edge energy (mean squared Laplacian) of the grey image, over the cells where ``mask`` is 1."""
    energy = cv2.Laplacian(grey, cv2.CV_32F) ** 2
    if mask is None:
        return float(energy.mean())
    weights = cv2.resize(mask, (grey.shape[1], grey.shape[0]), interpolation=cv2.INTER_NEAREST)
    return float((energy * weights).sum() / max(weights.sum(), 1.0))


def layout(grey: np.ndarray) -> np.ndarray:
    """Gradient magnitude at low resolution: where the edges of the scene are."""
    blurred = cv2.GaussianBlur(grey.astype(np.float32), (5, 5), 1.5)
    gx = cv2.Sobel(blurred, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(blurred, cv2.CV_32F, 0, 1)
    return cv2.resize(cv2.magnitude(gx, gy), LAYOUT, interpolation=cv2.INTER_AREA)


def zone_mask(zone: Box | None, frame_size: tuple[int, int]) -> np.ndarray:
    """1 outside ``zone``, 0 inside, at LAYOUT resolution."""
    mask = np.ones((LAYOUT[1], LAYOUT[0]), np.float32)
    if zone is not None:
        w, h = frame_size
        x1, y1 = int(zone[0] / w * LAYOUT[0]), int(zone[1] / h * LAYOUT[1])
        x2, y2 = int(np.ceil(zone[2] / w * LAYOUT[0])), int(np.ceil(zone[3] / h * LAYOUT[1]))
        mask[max(0, y1):y2, max(0, x1):x2] = 0
    return mask


def _spread(values: np.ndarray, mask: np.ndarray) -> float:
    weights = mask / mask.sum()
    mean = (values * weights).sum()
    return float(np.sqrt(((values - mean) ** 2 * weights).sum()))


def correlation(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Masked normalised cross-correlation in [-1, 1] (0 when either side is flat)."""
    weights = mask / mask.sum()
    da, db = a - (a * weights).sum(), b - (b * weights).sum()
    denominator = np.sqrt((da * da * weights).sum() * (db * db * weights).sum())
    return float((da * db * weights).sum() / denominator) if denominator > 1e-6 else 0.0


@dataclass(frozen=True)
class ReferenceView:
    """The calibrated view: layout, sharpness and the mask that leaves the seat zone out."""

    layout: np.ndarray
    sharpness: float
    mask: np.ndarray  # 1 where the scenery is compared (outside the candidate), at LAYOUT resolution
    judges_view: bool = True  # False: the view around the candidate is too small or bare to tell a moved camera

    @classmethod
    def from_frames(cls, frames: list[np.ndarray], candidate: Box | None) -> ReferenceView:
        """The view of ``frames`` with ``candidate`` (their box at calibration, a little grown) masked out."""
        if not frames:
            raise ValueError("no frames to make a reference view from")
        greys = [grey_small(f) for f in frames]
        h, w = frames[0].shape[:2]
        reference = np.mean([layout(g) for g in greys], axis=0)
        mask = zone_mask(candidate, (w, h))
        judges = bool(mask.sum() >= MIN_AREA * mask.size and _spread(reference, mask) >= MIN_STRUCTURE)
        if not judges:
            mask = np.ones_like(mask)
        return cls(layout=reference, sharpness=float(np.median([sharpness(g, mask) for g in greys])),
                   mask=mask, judges_view=judges)


def view_stats(frame: np.ndarray, reference: ReferenceView | None, people: list[Box] | None = None) -> ViewStats:
    """Statistics of ``frame``; without a reference, sharpness and view match read 1.0 (nothing to compare).

    ``people`` (boxes of everyone seen now) are masked out of the view match too: someone walking into
    the scenery covers it, but the camera has not moved.
    """
    grey = grey_small(frame)
    brightness, contrast = float(grey.mean()), float(grey.std())
    if reference is None:
        return ViewStats(brightness, contrast, 1.0, 1.0)
    relative = sharpness(grey, reference.mask) / reference.sharpness if reference.sharpness > 0 else 1.0
    match = 1.0
    if reference.judges_view:
        mask = reference.mask
        size = (frame.shape[1], frame.shape[0])
        for box in people or []:
            mask = mask * zone_mask(box, size)
        if mask.sum() >= MIN_AREA * mask.size:
            match = max(0.0, correlation(layout(grey), reference.layout, mask))
    return ViewStats(brightness, contrast, min(relative, 10.0), match)
