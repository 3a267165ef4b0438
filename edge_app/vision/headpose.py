"""Head pose and mouth opening from FaceMesh landmarks (frame pixels).

Head pose: ``cv2.solvePnP`` fits six points of a generic 3-D face (MediaPipe's canonical face: nose
tip, chin, outer eye corners, mouth corners) to the landmarks, with a pinhole camera of focal length
= the frame's longer side and the principal point at the frame centre. Yaw and pitch are measured
from the line of sight (face to camera), so a face looking at the camera reads (0, 0) wherever it is
in the frame. Degrees:

- yaw > 0: the face is turned towards the image's right (the subject's left), 0 = facing the camera;
- pitch > 0: the face is tilted down (looking down), < 0 up;
- roll > 0: the head is tilted clockwise as seen in the image (the eye on the image's right is lower).

Measured on the fixture portraits (float models): obama.jpg (1, 0, 0), grace_hopper (2, 12, -3),
biden (8, 3, 8); turned heads read larger yaw (bus passengers 23-27, the cameraman in profile 54).

Mouth opening: inner-lip gap (upper to lower inner lip midpoints) divided by mouth width (corner to
corner), both measured in 3-D with the mesh's z so a turned head does not inflate the ratio; about
0 closed, 0.1-0.3 talking, > 0.4 wide open.
"""

from __future__ import annotations

import cv2
import numpy as np

# FaceMesh indices. "Image-left" = the subject's right side for a face looking at the camera.
NOSE_TIP = 1
CHIN = 152
EYE_OUTER = (33, 263)  # image-left, image-right
EYE_INNER = (133, 362)
MOUTH_CORNERS = (61, 291)
LIP_INNER = (13, 14)  # upper, lower

POSE_POINTS = (NOSE_TIP, CHIN, EYE_OUTER[0], EYE_OUTER[1], MOUTH_CORNERS[0], MOUTH_CORNERS[1])
# The same six points of MediaPipe's canonical face model (face_geometry/data/canonical_face_model.obj,
# Apache-2.0), in cm, turned into OpenCV camera axes (x right, y down, z away from the camera).
GENERIC_FACE = np.array(
    [
        (0.0, 1.126865, -7.475604),  # nose tip
        (0.0, 9.403378, -4.264492),  # chin
        (-4.445859, -2.663991, -3.173422),  # outer eye corner, image-left
        (4.445859, -2.663991, -3.173422),  # outer eye corner, image-right
        (-2.456206, 4.342621, -4.283884),  # mouth corner, image-left
        (2.456206, 4.342621, -4.283884),  # mouth corner, image-right
    ],
    dtype=np.float64,
)


def camera_matrix(frame_shape: tuple[int, ...]) -> np.ndarray:
    h, w = frame_shape[:2]
    focal = float(max(h, w))
    return np.array([[focal, 0, w / 2], [0, focal, h / 2], [0, 0, 1]], dtype=np.float64)


def _yaw_pitch(direction: np.ndarray) -> tuple[float, float]:
    yaw = np.degrees(np.arctan2(direction[0], -direction[2]))
    pitch = np.degrees(np.arctan2(direction[1], np.hypot(direction[0], direction[2])))
    return float(yaw), float(pitch)


def angles_from_rotation(rotation: np.ndarray, position: np.ndarray | None = None) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a face rotation (generic face axes -> camera axes).

    With the face's ``position`` (camera coordinates), yaw and pitch are measured from the line of
    sight (face -> camera), so a face looking straight at the camera is (0, 0) anywhere in the image.
    """
    forward = rotation @ np.array([0.0, 0.0, -1.0])  # where the nose points
    across = rotation @ np.array([1.0, 0.0, 0.0])  # image-left eye to image-right eye
    yaw, pitch = _yaw_pitch(forward)
    if position is not None:
        sight_yaw, sight_pitch = _yaw_pitch(-np.asarray(position, dtype=np.float64).reshape(3))
        yaw, pitch = yaw - sight_yaw, pitch - sight_pitch
    roll = np.degrees(np.arctan2(across[1], across[0]))
    return float(yaw), float(pitch), float(roll)


def head_pose(landmarks: np.ndarray, frame_shape: tuple[int, ...]) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from (468, 2+) landmarks in frame pixels; see the module docstring."""
    image = np.asarray(landmarks, dtype=np.float64)[list(POSE_POINTS), :2]
    camera = camera_matrix(frame_shape)
    focal = camera[0, 0]
    # Start from a face looking at the camera at the distance its eye span implies.
    eye_span = float(np.linalg.norm(image[3] - image[2])) or 1.0
    depth = focal * float(GENERIC_FACE[3, 0] - GENERIC_FACE[2, 0]) / eye_span
    tvec = np.array([(image[0, 0] - camera[0, 2]) * depth / focal, (image[0, 1] - camera[1, 2]) * depth / focal, depth])
    ok, rvec, position = cv2.solvePnP(
        GENERIC_FACE, image, camera, np.zeros(4), np.zeros((3, 1)), tvec.reshape(3, 1),
        useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE,
    )
    if not ok:
        return float("nan"), float("nan"), float("nan")
    rotation, _ = cv2.Rodrigues(rvec)
    return angles_from_rotation(np.asarray(rotation), np.asarray(position))


def mouth_open_ratio(landmarks: np.ndarray) -> float:
    """Inner-lip gap / mouth width, in 3-D when z is given (see the module docstring)."""
    points = np.asarray(landmarks, dtype=np.float64)
    gap = np.linalg.norm(points[LIP_INNER[1]] - points[LIP_INNER[0]])
    width = np.linalg.norm(points[MOUTH_CORNERS[1]] - points[MOUTH_CORNERS[0]])
    return float(gap / width) if width > 0 else 0.0
