"""Cut-outs of real photos: a mask (alpha in [0, 1]) for the pixels that belong to the person or object.

Each method fits one kind of source: a person in front of a blue studio backdrop (chroma key), a person
in an ordinary photo (GrabCut seeded with their box and face), a dark phone on a light floor (Otsu
inside the labelled spot) and an object photographed on black (threshold). Nothing is drawn: the cut-out
keeps the photo's own pixels, only the mask is computed.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # x1, y1, x2, y2 in source pixels


@dataclass(frozen=True)
class Cutout:
    """Source pixels (RGB uint8) and their mask (float32 0..1), cropped to the mask's bounding box."""

    rgb: np.ndarray
    alpha: np.ndarray
    origin: tuple[int, int] = (0, 0)  # where the crop's top-left corner was in the source (x, y)

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[1], self.rgb.shape[0]


def crop_to_mask(rgb: np.ndarray, alpha: np.ndarray, margin: int = 2) -> Cutout:
    ys, xs = np.nonzero(alpha > 0.02)
    if ys.size == 0:
        raise ValueError("the cut-out mask is empty")
    h, w = alpha.shape
    x1, y1 = max(0, xs.min() - margin), max(0, ys.min() - margin)
    x2, y2 = min(w, xs.max() + 1 + margin), min(h, ys.max() + 1 + margin)
    return Cutout(rgb[y1:y2, x1:x2].copy(), alpha[y1:y2, x1:x2].astype(np.float32), (int(x1), int(y1)))


def largest_component(mask: np.ndarray, seed: tuple[int, int] | None = None) -> np.ndarray:
    """The connected component containing ``seed`` (x, y), or the largest one."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros(mask.shape, bool)
    if seed is not None and labels[seed[1], seed[0]] > 0:
        keep = labels[seed[1], seed[0]]
    else:
        keep = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == keep


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill the holes of a binary mask (regions not connected to the border)."""
    padded = np.pad(mask.astype(np.uint8), 1)
    flood = padded.copy()
    cv2.floodFill(flood, None, (0, 0), 1)
    return (mask | (flood[1:-1, 1:-1] == 0)).astype(bool)


def feather(mask: np.ndarray, radius: float) -> np.ndarray:
    """Soft edge of ``radius`` pixels: the mask blurred, so pasted edges do not alias."""
    soft = mask.astype(np.float32)
    if radius <= 0:
        return soft
    k = 2 * int(np.ceil(2 * radius)) + 1
    return np.asarray(cv2.GaussianBlur(soft, (k, k), radius), dtype=np.float32)


def blue_backdrop(rgb: np.ndarray, strict: bool = False) -> np.ndarray:
    """Pixels of a blue chroma backdrop (True); ``strict`` keeps only clear backdrop (for plate estimates)."""
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).astype(np.int16)
    hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    blue = (hue > 95) & (hue < 130) & (sat > (110 if strict else 80)) & (val > 60)
    if strict:
        blue = cv2.erode(blue.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    return blue


def chroma_key(rgb: np.ndarray, seed: tuple[int, int]) -> Cutout:
    """A person in front of the blue backdrop: everything not blue that is connected to ``seed`` (x, y).

    Edge pixels lose the blue the backdrop spilled on them (blue is limited to the mean of red and green).
    """
    person = ~blue_backdrop(rgb)
    person = cv2.morphologyEx(person.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).astype(bool)
    person = fill_holes(largest_component(person, seed))
    alpha = feather(cv2.erode(person.astype(np.uint8), np.ones((3, 3), np.uint8)), 1.0)
    out = rgb.astype(np.float32)
    edge = (alpha > 0.02) & (alpha < 0.98)
    limit = (out[..., 0] + out[..., 1]) / 2
    out[..., 2] = np.where(edge, np.minimum(out[..., 2], limit), out[..., 2])
    return crop_to_mask(np.clip(out, 0, 255).astype(np.uint8), alpha)


def grabcut_person(rgb: np.ndarray, box: Box, face: Box, iterations: int = 5, work_side: int = 560) -> Cutout:
    """A person in an ordinary photo: GrabCut inside ``box``, with the face and the chest below it as sure person.

    GrabCut runs on a copy at most ``work_side`` pixels across (seconds instead of minutes on large photos);
    the mask is scaled back to the photo and the pixels kept at full resolution.
    """
    cv2.setRNGSeed(0)
    h, w = rgb.shape[:2]
    k = min(1.0, work_side / max(h, w))
    small = cv2.resize(rgb, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA) if k < 1 else rgb
    x1, y1, x2, y2 = (round(v * k) for v in box)
    fx1, fy1, fx2, fy2 = (round(v * k) for v in face)
    mask = np.full(small.shape[:2], cv2.GC_BGD, np.uint8)
    mask[y1:y2, x1:x2] = cv2.GC_PR_FGD
    fw, fh = fx2 - fx1, fy2 - fy1
    shoulders = min(y2, fy2 + fh // 3)  # beside the head, above the shoulders: most likely background
    mask[y1:shoulders, x1 : max(x1, fx1 - fw // 3)] = cv2.GC_PR_BGD
    mask[y1:shoulders, min(x2, fx2 + fw // 3) : x2] = cv2.GC_PR_BGD
    chest = min(y2, fy2 + fh)  # and further out beside the upper chest
    mask[shoulders:chest, x1 : max(x1, fx1 - fw)] = cv2.GC_PR_BGD
    mask[shoulders:chest, min(x2, fx2 + fw) : x2] = cv2.GC_PR_BGD
    mask[fy1 + fh // 8 : fy2, fx1 + fw // 8 : fx2 - fw // 8] = cv2.GC_FGD
    cx = (fx1 + fx2) // 2
    mask[fy2 + fh // 2 : min(y2, fy2 + 2 * fh), max(x1, cx - fw // 2) : min(x2, cx + fw // 2)] = cv2.GC_FGD
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    bgr = np.ascontiguousarray(small[..., ::-1])
    cv2.grabCut(bgr, mask, (0, 0, 0, 0), background, foreground, iterations, cv2.GC_INIT_WITH_MASK)
    kept = np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
    opened = np.asarray(cv2.morphologyEx(kept, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)))
    person = fill_holes(largest_component(opened, ((fx1 + fx2) // 2, (fy1 + fy2) // 2)))
    full = cv2.resize(person.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) > 0.5
    return crop_to_mask(rgb, feather(full, 1.5 / max(k, 1e-3) ** 0.5))


def dark_object(rgb: np.ndarray, centre: tuple[float, float], radius: int) -> Cutout:
    """A dark object (a phone) on a lighter floor: Otsu threshold in a square around ``centre``."""
    h, w = rgb.shape[:2]
    cx, cy = round(centre[0]), round(centre[1])
    x1, y1, x2, y2 = max(0, cx - radius), max(0, cy - radius), min(w, cx + radius), min(h, cy + radius)
    patch = rgb[y1:y2, x1:x2]
    grey = cv2.GaussianBlur(cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY), (3, 3), 0)
    _, dark = cv2.threshold(grey, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    dark = cv2.morphologyEx(dark, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)).astype(bool)
    phone = fill_holes(largest_component(dark, (cx - x1, cy - y1)))
    if phone.sum() < 20:
        raise ValueError(f"no dark object found around {centre}")
    box = crop_to_mask(patch, feather(phone, 0.7), margin=1)
    return Cutout(box.rgb, box.alpha, (box.origin[0] + x1, box.origin[1] + y1))


def on_black(rgb: np.ndarray, level: int = 24) -> Cutout:
    """An object photographed on a black background (a book cover): every pixel brighter than ``level``."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    thing = fill_holes(largest_component(grey > level))
    return crop_to_mask(rgb, feather(cv2.erode(thing.astype(np.uint8), np.ones((3, 3), np.uint8)), 0.8))


def ellipse(rgb: np.ndarray, shape: tuple[float, float, float, float]) -> Cutout:
    """What lies inside an ellipse (centre x, centre y, half-width, half-height): a round object on a table,
    cut out with its rim."""
    cx, cy, ax, ay = shape
    mask = np.zeros(rgb.shape[:2], np.uint8)
    cv2.ellipse(mask, (round(cx), round(cy)), (round(ax), round(ay)), 0.0, 0.0, 360.0, 1, -1)
    if not mask.any():
        raise ValueError(f"the ellipse {shape} lies outside the {rgb.shape[1]}x{rgb.shape[0]} photo")
    return crop_to_mask(rgb, feather(mask.astype(bool), 1.0))
