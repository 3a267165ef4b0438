"""Detector parity gate: the int8 model must find the float model's people.

On every photo with people (every photo not in ``tools.fixtures.NO_PEOPLE_PHOTOS``): the int8 model
finds as many people as the float model (score >= the device's person threshold), and every float
person box is matched (one-to-one) by an int8 person box with IoU >= 0.7. Photos without people are
reported in the figures but not gated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge_app.vision.detector import (
    BINS,
    COCO_LABELS,
    INPUT_SHAPE,
    INPUT_SIZE,
    MEAN_BGR,
    OUTPUT_SHAPES,
    STD_BGR,
    STRIDES,
    Detection,
    ObjectDetector,
)
from edge_app.vision.preprocess import iou
from tools.fixtures import NO_PEOPLE_PHOTOS
from tools.model_build.parity import ParityResult

MIN_IOU = 0.7
LABEL = "person"

MANIFEST: dict[str, Any] = {
    "kind": "detector",
    "input": {
        "shape": list(INPUT_SHAPE), "dtype": "float32", "layout": "NCHW", "colour": "BGR",
        "resize": f"frame (or region) stretched to {INPUT_SIZE}x{INPUT_SIZE}, aspect ratio not kept",
        "mean": MEAN_BGR.tolist(), "std": STD_BGR.tolist(),
    },
    "outputs": {
        "shapes": [list(s) for s in OUTPUT_SHAPES],
        "decoding": (
            f"per stride {list(STRIDES)} (grid 416/stride): class logits [1,G,G,80] -> sigmoid; box bins "
            f"[1,G,G,{4 * BINS}] = left, top, right, bottom x {BINS} bins -> softmax, distance = "
            "sum(p * bin) * stride from the cell centre ((col + 0.5) * stride, (row + 0.5) * stride); "
            "then per-class score thresholds and per-class NMS (IoU 0.5)"
        ),
    },
    "labels": list(COCO_LABELS),
}


def _people(detections: list[Detection]) -> np.ndarray:
    return np.array([d.box for d in detections if d.label == LABEL], dtype=np.float32).reshape(-1, 4)


def _best_matches(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """For each reference box, the IoU of a one-to-one greedy match (0 when none is left)."""
    if len(reference) == 0:
        return np.zeros(0, np.float32)
    if len(candidate) == 0:
        return np.zeros(len(reference), np.float32)
    overlaps = iou(reference, candidate)
    matched = np.zeros(len(reference), np.float32)
    for _ in range(min(overlaps.shape)):
        r, c = np.unravel_index(np.argmax(overlaps), overlaps.shape)
        if overlaps[r, c] <= 0:
            break
        matched[r] = overlaps[r, c]
        overlaps[r, :] = -1
        overlaps[:, c] = -1
    return matched


def check(float_path: Path, int8_path: Path, photos: dict[str, np.ndarray]) -> ParityResult:
    reference = ObjectDetector(float_path)
    quantized = ObjectDetector(int8_path)
    figures: dict[str, Any] = {"threshold": round(reference.threshold(LABEL), 3), "min_iou_required": MIN_IOU,
                               "photos": {}}
    failures: list[str] = []
    ious: list[float] = []
    score_diffs: list[float] = []
    for name, image in sorted(photos.items()):
        ref_dets, q_dets = reference.detect(image), quantized.detect(image)
        ref, q = _people(ref_dets), _people(q_dets)
        matched = _best_matches(ref, q)
        ref_scores = [d.score for d in ref_dets if d.label == LABEL]
        q_scores = [d.score for d in q_dets if d.label == LABEL]
        gated = name not in NO_PEOPLE_PHOTOS
        figures["photos"][name] = {
            "gated": gated, "people_float": len(ref), "people_int8": len(q),
            "min_iou": round(float(matched.min()), 3) if len(matched) else None,
            "scores_float": [round(s, 3) for s in ref_scores], "scores_int8": [round(s, 3) for s in q_scores],
        }
        if not gated:
            continue
        ious.extend(matched.tolist())
        score_diffs.extend(abs(a - b) for a, b in zip(ref_scores, q_scores, strict=False))
        if len(ref) != len(q):
            failures.append(f"{name}: float finds {len(ref)} people, int8 {len(q)}")
        if len(matched) and matched.min() < MIN_IOU:
            failures.append(f"{name}: a float person box is matched only with IoU {matched.min():.2f} < {MIN_IOU}")
    gated_photos = [p for p in figures["photos"].values() if p["gated"]]
    figures["photos_gated"] = len(gated_photos)
    figures["people_float"] = sum(p["people_float"] for p in gated_photos)
    figures["people_int8"] = sum(p["people_int8"] for p in gated_photos)
    figures["min_iou"] = round(min(ious), 3) if ious else None
    figures["mean_iou"] = round(float(np.mean(ious)), 3) if ious else None
    figures["mean_person_score_diff"] = round(float(np.mean(score_diffs)), 4) if score_diffs else None
    if not gated_photos:
        failures.append("no photo with people was given: nothing was compared")
    return ParityResult(passed=not failures, figures=figures, failures=failures)
