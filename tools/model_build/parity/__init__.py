"""Parity gates: the int8 model must keep the float model's answers on real photos.

One module per model (``parity/<model>.py``) with ``check(float_path, int8_path, photos) -> ParityResult``
and ``MANIFEST`` (input spec, output decoding, labels). Runs in the project environment with the
device's own inference code, so the gate checks exactly what the device will run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge_app.vision.preprocess import iou

BORDER_BAND = 0.05  # a box scoring within this of the threshold may appear in one model only


@dataclass
class ParityResult:
    passed: bool
    figures: dict[str, Any]
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PhotoBoxes:
    """What the float and the int8 model found on one photo (boxes (N, 4) and their scores)."""

    gated: bool  # does this photo count for the gate, or is it only reported?
    float_boxes: np.ndarray
    float_scores: list[float]
    int8_boxes: np.ndarray
    int8_scores: list[float]


def matches(reference: np.ndarray, candidate: np.ndarray) -> list[tuple[int, int, float]]:
    """One-to-one greedy matches (reference row, candidate row, IoU), best overlap first."""
    if len(reference) == 0 or len(candidate) == 0:
        return []
    overlaps = iou(reference, candidate)
    pairs = []
    for _ in range(min(overlaps.shape)):
        r, c = np.unravel_index(np.argmax(overlaps), overlaps.shape)
        if overlaps[r, c] <= 0:
            break
        pairs.append((int(r), int(c), float(overlaps[r, c])))
        overlaps[r, :], overlaps[:, c] = -1, -1
    return pairs


def matched_ious(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """For each reference box, the IoU of a one-to-one greedy match (0 when none is left)."""
    matched = np.zeros(len(reference), np.float32)
    for r, _c, overlap in matches(reference, candidate):
        matched[r] = overlap
    return matched


def unmatched_scores(photo: PhotoBoxes) -> tuple[list[float], list[float]]:
    """Scores of the float boxes without an int8 match, and of the int8 boxes without a float match."""
    pairs = matches(photo.float_boxes, photo.int8_boxes)
    float_left = [s for i, s in enumerate(photo.float_scores) if i not in {r for r, _, _ in pairs}]
    int8_left = [s for i, s in enumerate(photo.int8_scores) if i not in {c for _, c, _ in pairs}]
    return float_left, int8_left


def box_parity(found: dict[str, PhotoBoxes], things: str, thing: str, min_iou: float,
               figures: dict[str, Any], band: float = BORDER_BAND) -> ParityResult:
    """The detector-style gate: on every gated photo each box of either model has a one-to-one match in
    the other with IoU >= ``min_iou``. A box only one model finds fails the gate unless its score is within
    ``band`` of the threshold (``figures["threshold"]``): a score that close to the line crosses it with
    quantisation noise alone, so it is reported as ``borderline``, not failed."""
    figures = {**figures, "min_iou_required": min_iou, "border_band": band, "photos": {}}
    border = float(figures["threshold"]) + band
    failures: list[str] = []
    ious: list[float] = []
    score_diffs: list[float] = []
    for name, photo in sorted(found.items()):
        matched = matched_ious(photo.float_boxes, photo.int8_boxes)
        float_left, int8_left = unmatched_scores(photo)
        # IoUs of the float boxes that count: matched ones, and unmatched ones clear of the border (IoU 0)
        counted = [float(m) for m, s in zip(matched, photo.float_scores, strict=True) if m > 0 or s >= border]
        n_float, n_int8 = len(photo.float_boxes), len(photo.int8_boxes)
        figures["photos"][name] = {
            "gated": photo.gated, f"{things}_float": n_float, f"{things}_int8": n_int8,
            "min_iou": round(min(counted), 3) if counted else None,
            "scores_float": [round(s, 3) for s in photo.float_scores],
            "scores_int8": [round(s, 3) for s in photo.int8_scores],
            "borderline": [round(s, 3) for s in float_left + int8_left if s < border],
        }
        if not photo.gated:
            continue
        ious.extend(counted)
        score_diffs.extend(abs(a - b) for a, b in zip(photo.float_scores, photo.int8_scores, strict=False))
        if any(s >= border for s in float_left + int8_left):
            failures.append(f"{name}: float finds {n_float} {things}, int8 {n_int8} (a box found by one model "
                            f"only scores >= {border:.2f})")
        if counted and min(counted) < min_iou:
            failures.append(f"{name}: a float {thing} box is matched only with IoU {min(counted):.2f} < {min_iou}")
    gated = [p for p in figures["photos"].values() if p["gated"]]
    figures["photos_gated"] = len(gated)
    figures[f"{things}_float"] = sum(p[f"{things}_float"] for p in gated)
    figures[f"{things}_int8"] = sum(p[f"{things}_int8"] for p in gated)
    figures["min_iou"] = round(min(ious), 3) if ious else None
    figures["mean_iou"] = round(float(np.mean(ious)), 3) if ious else None
    figures["mean_score_diff"] = round(float(np.mean(score_diffs)), 4) if score_diffs else None
    if not figures[f"{things}_float"]:
        failures.append(f"the float model found no {thing} on the gated photos: nothing was compared")
    return ParityResult(passed=not failures, figures=figures, failures=failures)
