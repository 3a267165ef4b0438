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


def matched_ious(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """For each reference box, the IoU of a one-to-one greedy match (0 when none is left)."""
    matched = np.zeros(len(reference), np.float32)
    if len(reference) == 0 or len(candidate) == 0:
        return matched
    overlaps = iou(reference, candidate)
    for _ in range(min(overlaps.shape)):
        r, c = np.unravel_index(np.argmax(overlaps), overlaps.shape)
        if overlaps[r, c] <= 0:
            break
        matched[r] = overlaps[r, c]
        overlaps[r, :], overlaps[:, c] = -1, -1
    return matched


def box_parity(found: dict[str, PhotoBoxes], things: str, thing: str, min_iou: float,
               figures: dict[str, Any]) -> ParityResult:
    """The detector-style gate: on every gated photo the int8 model finds as many ``things`` as the
    float model and every float box has a one-to-one int8 match with IoU >= ``min_iou``."""
    figures = {**figures, "min_iou_required": min_iou, "photos": {}}
    failures: list[str] = []
    ious: list[float] = []
    score_diffs: list[float] = []
    for name, photo in sorted(found.items()):
        matched = matched_ious(photo.float_boxes, photo.int8_boxes)
        n_float, n_int8 = len(photo.float_boxes), len(photo.int8_boxes)
        figures["photos"][name] = {
            "gated": photo.gated, f"{things}_float": n_float, f"{things}_int8": n_int8,
            "min_iou": round(float(matched.min()), 3) if len(matched) else None,
            "scores_float": [round(s, 3) for s in photo.float_scores],
            "scores_int8": [round(s, 3) for s in photo.int8_scores],
        }
        if not photo.gated:
            continue
        ious.extend(matched.tolist())
        score_diffs.extend(abs(a - b) for a, b in zip(photo.float_scores, photo.int8_scores, strict=False))
        if n_float != n_int8:
            failures.append(f"{name}: float finds {n_float} {things}, int8 {n_int8}")
        if len(matched) and matched.min() < min_iou:
            failures.append(f"{name}: a float {thing} box is matched only with IoU {matched.min():.2f} < {min_iou}")
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
