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
from tools.fixtures import NO_PEOPLE_PHOTOS
from tools.model_build.parity import ParityResult, PhotoBoxes, box_parity

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


def _people(detections: list[Detection]) -> tuple[np.ndarray, list[float]]:
    people = [d for d in detections if d.label == LABEL]
    return np.array([d.box for d in people], dtype=np.float32).reshape(-1, 4), [d.score for d in people]


def check(float_path: Path, int8_path: Path, photos: dict[str, np.ndarray]) -> ParityResult:
    reference, quantized = ObjectDetector(float_path), ObjectDetector(int8_path)
    found = {
        name: PhotoBoxes(name not in NO_PEOPLE_PHOTOS, *_people(reference.detect(image)),
                         *_people(quantized.detect(image)))
        for name, image in photos.items()
    }
    return box_parity(found, "people", "person", MIN_IOU, {"threshold": round(reference.threshold(LABEL), 3)})
