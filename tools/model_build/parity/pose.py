"""Pose parity gate: the int8 model must put the float model's confident keypoints in the same place.

On every photo with people (every photo not in ``tools.fixtures.NO_PEOPLE_PHOTOS``), whole frame as
the device runs it without a person box: each keypoint the float model scores >= 0.5 lies within 5%
of the image size (distance / longer image side) in the int8 model.

For context the figures also give ``float_self_noise``: how far the float model's own keypoints move
when its input gets imperceptible noise (sigma 2 grey levels, about a camera's sensor noise). MoveNet
picks cells by argmax, so a keypoint with two near-equal candidates can jump under any perturbation,
quantization included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge_app.vision.pose import (
    GRID,
    HEAD_CLAMPS,
    HEAD_SHAPES,
    HEADS,
    INPUT_SHAPE,
    INPUT_SIZE,
    KEYPOINT_NAMES,
    PoseEstimator,
    prepare,
)
from tools.fixtures import NO_PEOPLE_PHOTOS
from tools.model_build.parity import ParityResult

MIN_SCORE = 0.5
MAX_DISTANCE = 0.05  # fraction of the longer image side
NOISE_SIGMA = 2.0

MANIFEST: dict[str, Any] = {
    "kind": "pose",
    "input": {
        "shape": list(INPUT_SHAPE), "dtype": "float32", "layout": "NHWC", "colour": "RGB", "range": "0..255",
        "resize": "whole frame letterboxed (zero padding), or a square crop 1.25x the person box's longer side",
    },
    "outputs": {
        "heads": {
            head: {"name_contains": tag, "shape": list(HEAD_SHAPES[head]), "gain": HEAD_CLAMPS[head][0],
                   "shift": HEAD_CLAMPS[head][1], "clamp": HEAD_CLAMPS[head][2]}
            for head, tag in HEADS.items()
        },
        "decoding": (
            f"each head on a {GRID}x{GRID} grid: value = (output - shift) / gain (logits, cells). "
            "centre cell = argmax(sigmoid(centre) / (distance to the grid centre + 1.8)); "
            "keypoint guess = centre cell + regress[centre] (y, x pairs); "
            "keypoint cell = argmax(sigmoid(heatmap_k) / (distance to the guess + 1.8)); "
            f"position = (cell + offset[cell, k]) * 192/{GRID} input pixels; score = sigmoid(heatmap_k) at that cell"
        ),
    },
    "labels": list(KEYPOINT_NAMES),
}


def check(float_path: Path, int8_path: Path, photos: dict[str, np.ndarray]) -> ParityResult:
    reference = PoseEstimator(float_path)
    quantized = PoseEstimator(int8_path)
    figures: dict[str, Any] = {"min_score": MIN_SCORE, "max_distance_allowed": MAX_DISTANCE, "photos": {}}
    failures: list[str] = []
    distances: list[float] = []
    ref_scores: list[float] = []
    q_scores: list[float] = []
    noise: list[float] = []
    rng = np.random.default_rng(0)
    for name, image in sorted(photos.items()):
        if name in NO_PEOPLE_PHOTOS:
            continue
        ref = reference.estimate(image).as_array()
        q = quantized.estimate(image).as_array()
        tensor, _ = prepare(image)
        clean = reference.estimate_raw(tensor)
        jittered = reference.estimate_raw(np.clip(tensor + rng.normal(0, NOISE_SIGMA, tensor.shape), 0, 255))
        confident = ref[:, 2] >= MIN_SCORE
        side = max(image.shape[:2])
        dist = np.linalg.norm(ref[:, :2] - q[:, :2], axis=1) / side
        moved = np.linalg.norm(clean[:, :2] - jittered[:, :2], axis=1) / INPUT_SIZE  # letterboxed: same ratio
        noise.extend(moved[confident].tolist())
        distances.extend(dist[confident].tolist())
        ref_scores.extend(ref[confident, 2].tolist())
        q_scores.extend(q[confident, 2].tolist())
        worst = int(np.argmax(np.where(confident, dist, -1))) if confident.any() else None
        figures["photos"][name] = {
            "confident_keypoints": int(confident.sum()),
            "max_distance": round(float(dist[confident].max()), 4) if confident.any() else None,
            "worst_keypoint": KEYPOINT_NAMES[worst] if worst is not None else None,
            "pose_score_float": round(float(ref[:, 2].mean()), 3),
            "pose_score_int8": round(float(q[:, 2].mean()), 3),
        }
        for k in np.flatnonzero(confident & (dist > MAX_DISTANCE)):
            failures.append(f"{name}: {KEYPOINT_NAMES[k]} moved {dist[k]:.1%} of the image (> {MAX_DISTANCE:.0%})")
    figures["confident_keypoints"] = len(distances)
    figures["mean_distance"] = round(float(np.mean(distances)), 4) if distances else None
    figures["max_distance"] = round(float(np.max(distances)), 4) if distances else None
    figures["score_ratio"] = round(float(np.sum(q_scores) / np.sum(ref_scores)), 3) if ref_scores else None
    if noise:
        figures["float_self_noise"] = {"sigma": NOISE_SIGMA, "mean_distance": round(float(np.mean(noise)), 4),
                                       "max_distance": round(float(np.max(noise)), 4)}
    if not distances:
        failures.append("no keypoint scored >= 0.5 in the float model: nothing was compared")
    return ParityResult(passed=not failures, figures=figures, failures=failures)
