"""Face-detector parity gate: the int8 BlazeFace must find the float model's faces.

On the photos with faces (``FACE_PHOTOS``): the int8 model finds as many faces as the float model
(score >= the device threshold, 0.5), and every float face box is matched one-to-one by an int8 box
with IoU >= 0.7. Other photos are reported in the figures but not gated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge_app.vision.face import (
    CROP_SCALE,
    DETECTOR_OUTPUTS,
    DETECTOR_SIZE,
    DETECTOR_STRIDES,
    KEYPOINTS,
    LOGIT_SHIFT,
    REGRESSOR_UNIT,
    Face,
    FaceDetector,
    FaceLandmarker,
)
from tools.model_build.parity import ParityResult, PhotoBoxes, box_parity

FACE_PHOTOS = ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "grace_hopper.jpg", "astronaut.png",
               "zidane.jpg", "bus.jpg")
MIN_IOU = 0.7

MANIFEST: dict[str, Any] = {
    "kind": "face_detector",
    "input": {
        "shape": [1, DETECTOR_SIZE, DETECTOR_SIZE, 3], "dtype": "float32", "layout": "NHWC", "colour": "RGB",
        "resize": f"frame letterboxed (aspect ratio kept, black padding) to {DETECTOR_SIZE}x{DETECTOR_SIZE}",
        "scale": "pixel / 127.5 - 1 (range -1..1)",
    },
    "outputs": {
        "shapes": [list(s) for s in DETECTOR_OUTPUTS],
        "decoding": (
            f"896 anchors: stride {DETECTOR_STRIDES[0][0]} grid 16x16 x {DETECTOR_STRIDES[0][1]} then stride "
            f"{DETECTOR_STRIDES[1][0]} grid 8x8 x {DETECTOR_STRIDES[1][1]}, centres (col + 0.5, row + 0.5) * stride. "
            f"logit = score output - {LOGIT_SHIFT:g}, score = sigmoid(logit); regressors = (output - 3) * "
            f"{REGRESSOR_UNIT:.4g} input px: centre dx, dy, width, height, then 6 keypoints (dx, dy) from the "
            "anchor centre; weighted NMS (IoU 0.3); letterbox undone to frame pixels"
        ),
    },
    "labels": ["face"],
    "keypoints": list(KEYPOINTS),
    "landmark_crop_scale": CROP_SCALE,
}


def float_faces(folder: Path, photos: dict[str, np.ndarray], landmarks: bool = False) -> dict[str, list[Face]]:
    """Faces the float reference models (face_detector, optionally face_landmarks) in ``folder`` find."""
    detector = FaceDetector(folder / "face_detector.float.tflite")
    landmarker = FaceLandmarker(folder / "face_landmarks.float.tflite") if landmarks else None
    found = {}
    for name in FACE_PHOTOS:
        if name in photos:
            faces = detector.detect(photos[name])
            found[name] = [landmarker.landmarks(photos[name], f) for f in faces] if landmarker else faces
    return found


def _boxes(faces: list[Face]) -> np.ndarray:
    return np.array([f.box for f in faces], dtype=np.float32).reshape(-1, 4)


def check(float_path: Path, int8_path: Path, photos: dict[str, np.ndarray]) -> ParityResult:
    reference, quantized = FaceDetector(float_path), FaceDetector(int8_path)
    found = {}
    for name, image in photos.items():
        ref, q = reference.detect(image), quantized.detect(image)
        found[name] = PhotoBoxes(name in FACE_PHOTOS, _boxes(ref), [f.score for f in ref],
                                 _boxes(q), [f.score for f in q])
    return box_parity(found, "faces", "face", MIN_IOU, {"threshold": reference.score_threshold})
