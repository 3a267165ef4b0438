"""Face-landmark parity gate: int8 FaceMesh landmarks and head pose must match the float model's.

Faces come from the float face detector built beside the checked files (``face_detector.float.tflite``),
so float and int8 landmark models see the same crops. On every face of ``FACE_PHOTOS``: the distance
between int8 and float landmarks (x, y in frame pixels) divided by the face box side has a mean of at
most 2% and a maximum of at most 5%; on faces the float model calls present (>= 0.5), yaw, pitch and
roll differ by at most 5 degrees and the presence probability by at most 0.1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge_app.vision.face import CROP_SCALE, LANDMARK_OUTPUTS, LANDMARK_SIZE, FaceLandmarker
from tools.model_build.parity import ParityResult
from tools.model_build.parity.face_detector import float_faces

MAX_MEAN_ERROR = 0.02  # of the face box side
MAX_POINT_ERROR = 0.05
MAX_ANGLE_DELTA = 5.0  # degrees
MAX_PRESENCE_DELTA = 0.1

MANIFEST: dict[str, Any] = {
    "kind": "face_landmarks",
    "requires": ["face_detector"],
    "input": {
        "shape": [1, LANDMARK_SIZE, LANDMARK_SIZE, 3], "dtype": "float32", "layout": "NHWC", "colour": "RGB",
        "crop": f"square of {CROP_SCALE} x the detector box side around its centre, rotated so the detector's "
                f"eye keypoints are level, resized to {LANDMARK_SIZE}x{LANDMARK_SIZE}",
        "scale": "pixel / 255 (range 0..1)",
    },
    "outputs": {
        "shapes": [list(s) for s in LANDMARK_OUTPUTS],
        "decoding": "mesh [1,1404] = 468 x (x, y, z) in crop pixels, mapped back through the inverse crop "
                    "transform (z scaled like x); face flag [1,1,1,1] = logit, presence = sigmoid(logit); head "
                    "pose by solvePnP of 6 landmarks (edge_app.vision.headpose)",
    },
    "labels": [],
}


def check(float_path: Path, int8_path: Path, photos: dict[str, np.ndarray]) -> ParityResult:
    reference, quantized = FaceLandmarker(float_path), FaceLandmarker(int8_path)
    faces = float_faces(float_path.parent, photos)
    figures: dict[str, Any] = {"faces": 0, "photos": {}}
    failures: list[str] = []
    means, maxima, angles, presences = [], [], [], []
    for name, found in faces.items():
        rows = []
        for i, face in enumerate(found):
            a, b = reference.landmarks(photos[name], face), quantized.landmarks(photos[name], face)
            assert a.landmarks is not None and b.landmarks is not None and a.presence is not None
            error = np.linalg.norm(a.landmarks[:, :2] - b.landmarks[:, :2], axis=1) / face.side
            delta = [abs(x - y) for x, y in ((a.yaw, b.yaw), (a.pitch, b.pitch), (a.roll, b.roll))]  # type: ignore[operator]
            presence_delta = abs(a.presence - (b.presence or 0.0))
            means.append(float(error.mean()))
            maxima.append(float(error.max()))
            presences.append(presence_delta)
            row = {"side": round(face.side, 1), "mean_error": round(float(error.mean()), 4),
                   "max_error": round(float(error.max()), 4), "presence_float": round(a.presence, 3),
                   "pose_float": [round(v, 1) for v in (a.yaw, a.pitch, a.roll)],  # type: ignore[arg-type]
                   "pose_int8": [round(v, 1) for v in (b.yaw, b.pitch, b.roll)]}  # type: ignore[arg-type]
            rows.append(row)
            label = f"{name} face {i}"
            if error.mean() > MAX_MEAN_ERROR or error.max() > MAX_POINT_ERROR:
                failures.append(f"{label}: landmark error mean {error.mean():.3f}, max {error.max():.3f} of the "
                                f"face side (limits {MAX_MEAN_ERROR}, {MAX_POINT_ERROR})")
            if a.presence >= 0.5:
                angles.append(max(delta))
                if max(delta) > MAX_ANGLE_DELTA:
                    failures.append(f"{label}: head pose differs by {max(delta):.1f} degrees (> {MAX_ANGLE_DELTA})")
                if presence_delta > MAX_PRESENCE_DELTA:
                    failures.append(f"{label}: presence {a.presence:.2f} float vs {b.presence:.2f} int8")
        figures["photos"][name] = rows
    figures["faces"] = len(means)
    if means:
        figures["mean_error"] = round(float(np.mean(means)), 4)
        figures["worst_mean_error"] = round(max(means), 4)
        figures["max_error"] = round(max(maxima), 4)
        figures["max_pose_delta_deg"] = round(max(angles), 2) if angles else None
        figures["max_presence_delta"] = round(max(presences), 3)
    else:
        failures.append("the float detector found no face on the face photos: nothing was compared")
    return ParityResult(passed=not failures, figures=figures, failures=failures)
