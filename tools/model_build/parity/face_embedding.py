"""Face-embedding parity gate: int8 descriptors must point where the float model's do.

Faces and landmarks come from the float face models built beside the checked files, so both
embedding models see the same aligned crops. Gate: cosine(int8, float) >= 0.98 on every face of
``FACE_PHOTOS``. The figures also give the identity table (Obama pairs and Obama vs Biden) for both.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from edge_app.vision.identity import (
    ARCFACE_112,
    BGR_MEAN,
    EMBED_OUTPUTS,
    EMBED_SIZE,
    MATCH_THRESHOLD,
    ZOOM,
    FaceEmbedder,
    cosine,
)
from tools.model_build.parity import ParityResult
from tools.model_build.parity.face_detector import float_faces

MIN_COSINE = 0.98
IDENTITY_PHOTOS = ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")

MANIFEST: dict[str, Any] = {
    "kind": "face_embedding",
    "requires": ["face_detector", "face_landmarks"],
    "input": {
        "shape": [1, EMBED_SIZE, EMBED_SIZE, 3], "dtype": "float32", "layout": "NHWC", "colour": "BGR",
        "crop": f"similarity transform of eye centres, nose tip and mouth corners onto the ArcFace 112 template "
                f"{ARCFACE_112.round(2).tolist()} scaled to {EMBED_SIZE} and zoomed out {ZOOM}x",
        "scale": f"pixel - {BGR_MEAN.round(4).tolist()} (B, G, R), unscaled",
    },
    "outputs": {
        "shapes": [list(s) for s in EMBED_OUTPUTS],
        "decoding": f"1024-d descriptor, L2-normalised in numpy; same person when cosine >= {MATCH_THRESHOLD}",
    },
    "labels": [],
    "match_threshold": MATCH_THRESHOLD,
}


def check(float_path: Path, int8_path: Path, photos: dict[str, np.ndarray]) -> ParityResult:
    reference, quantized = FaceEmbedder(float_path), FaceEmbedder(int8_path)
    faces = float_faces(float_path.parent, photos, landmarks=True)
    figures: dict[str, Any] = {"min_cosine_required": MIN_COSINE, "photos": {}}
    failures: list[str] = []
    cosines: list[float] = []
    first: dict[str, dict[str, np.ndarray]] = {"float": {}, "int8": {}}
    for name, found in faces.items():
        row = []
        for i, face in enumerate(found):
            a, b = reference.embed(photos[name], face), quantized.embed(photos[name], face)
            value = cosine(a, b)
            cosines.append(value)
            row.append(round(value, 4))
            if i == 0:
                first["float"][name], first["int8"][name] = a, b
            if value < MIN_COSINE:
                failures.append(f"{name} face {i}: cosine(int8, float) {value:.4f} < {MIN_COSINE}")
        figures["photos"][name] = row
    if not cosines:
        failures.append("the float detector found no face on the face photos: nothing was compared")
        return ParityResult(passed=False, figures=figures, failures=failures)
    figures["faces"] = len(cosines)
    figures["min_cosine"] = round(min(cosines), 4)
    figures["mean_cosine"] = round(float(np.mean(cosines)), 4)
    for quant, vectors in first.items():
        names = [n for n in IDENTITY_PHOTOS if n in vectors]
        figures[f"identity_{quant}"] = {
            f"{x} ~ {y}": round(cosine(vectors[x], vectors[y]), 3) for x, y in combinations(names, 2)
        }
    return ParityResult(passed=not failures, figures=figures, failures=failures)
