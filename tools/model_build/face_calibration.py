"""Calibration data for the face models, made by the device's own face code (converter environment).

Faces in the calibration photos are found with float references of the face models, converted here
from the same graphs and run by TensorFlow's interpreter (the device runtimes are not installed in the
converter environment). Crops are then made exactly as the device makes them, with jitter.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from edge_app.vision.face import Face, FaceDetector, FaceLandmarker
from tools.model_build.recipe import Recipe


class FloatModel:
    """A float TFLite model run by ``tf.lite.Interpreter``; float32 in, float32 out (a ``Runnable``)."""

    runtime = "tensorflow"

    def __init__(self, content: bytes) -> None:
        import tensorflow as tf

        self.interpreter: Any = tf.lite.Interpreter(model_content=content, num_threads=2)
        self.interpreter.allocate_tensors()

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        for detail, value in zip(self.interpreter.get_input_details(), inputs, strict=True):
            self.interpreter.set_tensor(detail["index"], np.asarray(value, dtype=np.float32))
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(d["index"]).copy() for d in self.interpreter.get_output_details()]


def float_model(recipe: Recipe, photos: list[np.ndarray]) -> FloatModel:
    from tools.model_build.convert import to_tflite
    from tools.model_build.sources import model_json
    from tools.model_build.tfjs_graph import load_graph_def

    graph = load_graph_def(model_json(recipe.source))
    if recipe.edit is not None:
        graph = recipe.edit(graph)
    return FloatModel(to_tflite(recipe, graph, "float", photos))


def photo_faces(photos: list[np.ndarray], with_landmarks: bool) -> list[tuple[int, Face]]:
    """(photo index, face) for every face the float detector finds (score >= 0.5), landmarks optional."""
    from tools.model_build.recipes import face_detector, face_landmarks

    detector = FaceDetector(float_model(face_detector.RECIPE, photos))
    landmarker = FaceLandmarker(float_model(face_landmarks.RECIPE, photos)) if with_landmarks else None
    found = []
    for index, photo in enumerate(photos):
        for face in detector.detect(photo):
            if face.side < 24:
                continue
            found.append((index, landmarker.landmarks(photo, face) if landmarker else face))
    if not found:
        raise RuntimeError("no face found in the calibration photos")
    return found


def jitter_colour(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random brightness/contrast change and, half the time, a horizontal flip."""
    gain, bias = rng.uniform(0.7, 1.3), rng.uniform(-30, 30)
    out = np.clip(image.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out[:, ::-1]) if rng.random() < 0.5 else out


def moved_face(face: Face, rng: np.random.Generator, shift: float, scale: float, degrees: float) -> Face:
    """``face`` with its box moved by up to ``shift`` x side, resized and its keypoints rotated."""
    cx, cy = face.center
    side = face.side * rng.uniform(1 - scale, 1 + scale)
    cx, cy = cx + rng.normal(0, shift) * face.side, cy + rng.normal(0, shift) * face.side
    angle = np.radians(rng.uniform(-degrees, degrees))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = np.array(face.center)
    keypoints = (np.asarray(face.keypoints) - centre) @ rot.T + centre
    return Face(box=(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2), score=face.score,
                keypoints=keypoints.astype(np.float32))


def cycle(faces: list[tuple[int, Face]], rng: np.random.Generator, count: int) -> Iterator[tuple[int, Face]]:
    """``count`` faces, every face once per round, each round in a random order."""
    emitted = 0
    while emitted < count:
        for i in rng.permutation(len(faces)):
            if emitted == count:
                return
            emitted += 1
            yield faces[int(i)]


def random_face(photo: np.ndarray, rng: np.random.Generator) -> Face:
    """A box anywhere in the photo (what a false detection would crop)."""
    h, w = photo.shape[:2]
    side = rng.uniform(0.1, 0.6) * min(h, w)
    x, y = rng.uniform(0, w - side), rng.uniform(0, h - side)
    eyes = np.array([[x + 0.3 * side, y + 0.4 * side], [x + 0.7 * side, y + 0.4 * side]])
    rest = np.array([[x + side / 2, y + 0.55 * side], [x + side / 2, y + 0.75 * side],
                     [x + 0.1 * side, y + 0.5 * side], [x + 0.9 * side, y + 0.5 * side]])
    return Face(box=(x, y, x + side, y + side), score=0.0, keypoints=np.vstack([eyes, rest]).astype(np.float32))
