"""FaceMesh 468-point landmarks (192x192): float reference and full-integer int8, same cut.

Both variants end at the mesh (``output_mesh/Reshape``, [1, 1404] crop pixels) and at the face-flag
logit (``conv2d_31/BiasAdd``, [1, 1, 1, 1]); the flag's in-graph sigmoid is cut out (done in numpy) and
the unused 266-value contours head is dropped. Input: RGB in [0, 1]. Calibration: crops made by the
device's ``landmark_crop`` around the faces the float detector finds in the fixture photos, jittered
(shift, scale, rotation, flip, brightness), plus one in ten crops of random places (false detections).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from edge_app.vision.face import LANDMARK_SIZE, landmark_crop, landmark_input
from tools.model_build.face_calibration import cycle, jitter_colour, moved_face, photo_faces, random_face
from tools.model_build.recipe import Recipe

OUTPUTS = (
    "StatefulPartitionedCall/model_1/output_mesh/Reshape",  # [1, 1404]
    "StatefulPartitionedCall/model_1/conv2d_31/BiasAdd/BiasAdd",  # [1, 1, 1, 1] face-flag logit
)


def calibration(photos: list[np.ndarray], rng: np.random.Generator, count: int) -> Iterator[list[np.ndarray]]:
    faces = photo_faces(photos, with_landmarks=False)
    for index, face in cycle(faces, rng, count):
        photo = photos[index]
        if rng.random() < 0.1:
            photo = photos[int(rng.integers(len(photos)))]
            crop_face = random_face(photo, rng)
        else:
            crop_face = moved_face(face, rng, shift=0.06, scale=0.15, degrees=20)
        crop, _ = landmark_crop(photo, crop_face)
        yield [landmark_input(jitter_colour(crop, rng))]


RECIPE = Recipe(
    name="face_landmarks",
    kind="face_landmarks",
    source="facemesh",
    input_name="input_1",
    input_shape=(1, LANDMARK_SIZE, LANDMARK_SIZE, 3),
    float_outputs=OUTPUTS,
    int8_outputs=OUTPUTS,
    calibration=calibration,
    samples=300,
    notes="input rotated face crop RGB in [0, 1]; outputs mesh (crop px) + face-flag logit, decoded in numpy",
)
