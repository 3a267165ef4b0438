"""Faces (BlazeFace + FaceMesh): real int8 models on real photos, the numpy decoding, head pose, errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_app.vision.face import (
    DETECTOR_SIZE,
    LOGIT_SHIFT,
    REGRESSOR_UNIT,
    Face,
    FaceDetector,
    FaceLandmarker,
    decode_faces,
    decode_landmarks,
    face_anchors,
    landmark_crop,
    weighted_nms,
)
from edge_app.vision.headpose import GENERIC_FACE, POSE_POINTS, camera_matrix, head_pose, mouth_open_ratio
from edge_app.vision.preprocess import Letterbox
from edge_app.vision.runtime import ModelError
from tools.model_build.parity import face_detector as detector_parity
from tools.model_build.parity import face_landmarks as landmark_parity

Photo = Callable[[str], np.ndarray]
PORTRAITS = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "grace_hopper.jpg", "astronaut.png"]


@pytest.fixture(scope="module")
def detector(models_dir: Path) -> FaceDetector:
    return FaceDetector(models_dir / "face_detector.int8.tflite")


@pytest.fixture(scope="module")
def landmarker(models_dir: Path) -> FaceLandmarker:
    return FaceLandmarker(models_dir / "face_landmarks.int8.tflite")


def _only_face(detector: FaceDetector, landmarker: FaceLandmarker, image: np.ndarray) -> Face:
    faces = detector.detect(image)
    assert len(faces) == 1, f"expected one face, found {len(faces)}"
    return landmarker.landmarks(image, faces[0])


# --- pure logic -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "strides", "count", "first", "first_of_second"),
    [
        (256, ((16, 2), (32, 6)), 896, (8, 8), (16, 16)),  # the BlazeFace back model
        (128, ((8, 2), (16, 6)), 896, (4, 4), (8, 8)),  # the front model's layout
        (64, ((32, 1),), 4, (16, 16), None),
    ],
)
def test_anchor_grid(
    size: int, strides: tuple[tuple[int, int], ...], count: int, first: tuple[int, int],
    first_of_second: tuple[int, int] | None,
) -> None:
    anchors = face_anchors(size, strides)
    assert anchors.shape == (count, 2)
    assert tuple(anchors[0]) == first
    per_cell = strides[0][1]
    assert (anchors[:per_cell] == anchors[0]).all(), "anchors of one cell share its centre"
    assert tuple(anchors[per_cell]) == (first[0] + strides[0][0], first[1]), "then the next cell along x"
    if first_of_second is not None:
        first_count = (size // strides[0][0]) ** 2 * per_cell
        assert tuple(anchors[first_count]) == first_of_second
    assert anchors.min() > 0 and anchors.max() < size


@pytest.mark.parametrize(
    ("anchor", "dx", "dy", "side"), [(0, 0.0, 0.0, 40.0), (137, 5.0, -3.0, 60.0), (700, -10, 4, 120)]
)
def test_decoding_places_box_and_keypoints(anchor: int, dx: float, dy: float, side: float) -> None:
    anchors = face_anchors()
    logits = np.full(len(anchors), -20.0, np.float32)
    logits[anchor] = 3.0
    regressors = np.zeros((len(anchors), 16), np.float32)
    regressors[anchor, :4] = (dx, dy, side, side)
    regressors[anchor, 4:] = np.tile([-10.0, -5.0], 6)
    box = Letterbox(scale=0.5, pad_x=0.0, pad_y=28.0)  # frame 512 wide, letterboxed into 256
    faces = decode_faces(logits, regressors, anchors, box, score_threshold=0.5)
    assert len(faces) == 1
    cx, cy = anchors[anchor] + (dx, dy)
    expected = ((cx - side / 2) / 0.5, (cy - side / 2 - 28) / 0.5, (cx + side / 2) / 0.5, (cy + side / 2 - 28) / 0.5)
    assert np.allclose(faces[0].box, expected)
    assert np.allclose(faces[0].keypoints[0], ((anchors[anchor, 0] - 10) / 0.5, (anchors[anchor, 1] - 5 - 28) / 0.5))
    assert faces[0].score == pytest.approx(1 / (1 + np.exp(-3.0)))


def test_bounded_outputs_are_undone() -> None:
    """The graph emits relu(logit + 16) and relu6(value / unit + 3); these constants undo it."""
    assert LOGIT_SHIFT == 16.0
    lowest, highest = (0.0 - 3.0) * REGRESSOR_UNIT, (6.0 - 3.0) * REGRESSOR_UNIT
    assert (lowest, highest) == pytest.approx((-DETECTOR_SIZE, DETECTOR_SIZE))


@pytest.mark.parametrize(
    ("boxes", "scores", "kept", "merged_x1"),
    [
        ([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], [0.9, 0.6, 0.8], [0, 2], (0 * 0.9 + 1 * 0.6) / 1.5),
        ([[0, 0, 10, 10], [20, 20, 30, 30]], [0.5, 0.7], [1, 0], 20.0),
        ([[5, 5, 5, 5], [5, 5, 5, 5]], [0.9, 0.8], [0, 1], 5.0),  # zero-area boxes must not loop forever
    ],
)
def test_weighted_nms(boxes: list[list[float]], scores: list[float], kept: list[int], merged_x1: float) -> None:
    result = weighted_nms(np.array(boxes, np.float32), np.array(scores, np.float32), 0.3)
    assert [i for i, _ in result] == kept
    assert result[0][1][0] == pytest.approx(merged_x1)


@pytest.mark.parametrize("degrees", [0.0, 20.0, -35.0])
def test_landmark_crop_maps_back_to_the_frame(degrees: float) -> None:
    angle = np.radians(degrees)
    eyes = np.array([[100.0, 100.0], [100 + 40 * np.cos(angle), 100 + 40 * np.sin(angle)]])
    keypoints = np.vstack([eyes, np.zeros((4, 2))]).astype(np.float32)
    face = Face(box=(70.0, 60.0, 170.0, 160.0), score=0.9, keypoints=keypoints)
    crop, matrix = landmark_crop(np.zeros((300, 400, 3), np.uint8), face)
    assert crop.shape == (192, 192, 3)
    in_crop = eyes @ matrix[:, :2].T + matrix[:, 2]
    assert in_crop[0, 1] == pytest.approx(in_crop[1, 1], abs=1e-3), "the eyes are level in the crop"
    mesh = np.hstack([in_crop, np.full((2, 1), 10.0)])
    back = decode_landmarks(np.vstack([mesh, np.zeros((466, 3))]).reshape(-1), matrix)
    assert np.allclose(back[:2, :2], eyes, atol=1e-3)
    assert back[0, 2] == pytest.approx(10.0 * 150 / 192, rel=1e-4), "z takes the crop's pixel scale"


def _projected(yaw: float, pitch: float, roll: float, shape: tuple[int, int] = (480, 640)) -> np.ndarray:
    """468 landmarks whose pose points are the generic face turned by (yaw, pitch, roll), straight ahead."""
    y, p, r = np.radians([yaw, pitch, roll])
    turn_y = np.array([[np.cos(y), 0, -np.sin(y)], [0, 1, 0], [np.sin(y), 0, np.cos(y)]])
    turn_p = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    turn_r = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    rotation = turn_r @ turn_p @ turn_y
    points, _ = cv2.projectPoints(GENERIC_FACE, cv2.Rodrigues(rotation)[0], np.array([0.0, 0.0, 60.0]),
                                  camera_matrix(shape), np.zeros(4))
    landmarks = np.zeros((468, 3), np.float32)
    landmarks[list(POSE_POINTS), :2] = points.reshape(-1, 2)
    return landmarks


@pytest.mark.parametrize(
    ("yaw", "pitch", "roll"), [(0, 0, 0), (30, 0, 0), (-25, 0, 0), (0, 20, 0), (0, -15, 0), (0, 0, 12), (0, 0, -20)]
)
def test_head_pose_recovers_known_rotations(yaw: float, pitch: float, roll: float) -> None:
    found = head_pose(_projected(yaw, pitch, roll), (480, 640, 3))
    assert np.allclose(found, (yaw, pitch, roll), atol=1.5), found


@pytest.mark.parametrize(("gap", "width", "ratio"), [(0.0, 50.0, 0.0), (10.0, 50.0, 0.2), (25.0, 50.0, 0.5)])
def test_mouth_open_ratio(gap: float, width: float, ratio: float) -> None:
    points = np.zeros((468, 3), np.float32)
    points[61], points[291] = (100, 200, 0), (100 + width, 200, 0)
    points[13], points[14] = (125, 195, 0), (125, 195 + gap, 0)
    assert mouth_open_ratio(points) == pytest.approx(ratio)


# --- real models on real photos ------------------------------------------------------------------------


@pytest.mark.parametrize("name", PORTRAITS)
def test_portraits_have_one_face_with_landmarks(models_dir: Path, photo: Photo, runtime: str, name: str) -> None:
    detector = FaceDetector(models_dir / "face_detector.int8.tflite", runtime=runtime)
    landmarker = FaceLandmarker(models_dir / "face_landmarks.int8.tflite", runtime=runtime)
    assert detector.model.runtime == runtime
    image = photo(name)
    face = _only_face(detector, landmarker, image)
    h, w = image.shape[:2]
    x1, y1, x2, y2 = face.box
    assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
    assert face.score > 0.7 and face.presence is not None and face.presence > 0.9
    assert face.landmarks is not None and face.landmarks.shape == (468, 3)
    margin = 0.15 * face.side
    inside = ((face.landmarks[:, 0] > x1 - margin) & (face.landmarks[:, 0] < x2 + margin)
              & (face.landmarks[:, 1] > y1 - margin) & (face.landmarks[:, 1] < y2 + margin))
    assert inside.mean() > 0.98, "the mesh lies on the detected face"
    eyes = face.keypoints[:2].mean(axis=0)
    assert y1 < eyes[1] < face.keypoints[3, 1] < y2, "eyes above the mouth, inside the box"


@pytest.mark.parametrize("name", ["obama.jpg", "grace_hopper.jpg", "astronaut.png", "biden.jpg"])
def test_frontal_portraits_face_the_camera(
    detector: FaceDetector, landmarker: FaceLandmarker, photo: Photo, name: str
) -> None:
    face = _only_face(detector, landmarker, photo(name))
    assert face.yaw is not None and face.pitch is not None and face.roll is not None
    assert abs(face.yaw) < 20 and abs(face.pitch) < 25 and abs(face.roll) < 15


def test_turned_head_and_mirror(detector: FaceDetector, landmarker: FaceLandmarker, photo: Photo) -> None:
    """obama2 is turned towards the image's left; its mirror image turns the other way by as much."""
    image = photo("obama2.jpg")
    face = _only_face(detector, landmarker, image)
    mirrored = _only_face(detector, landmarker, np.ascontiguousarray(image[:, ::-1]))
    assert face.yaw is not None and mirrored.yaw is not None and face.roll is not None and mirrored.roll is not None
    assert face.yaw < -8
    assert mirrored.yaw == pytest.approx(-face.yaw, abs=4)
    assert mirrored.roll == pytest.approx(-face.roll, abs=4)


@pytest.mark.parametrize("degrees", [15.0, -15.0])
def test_roll_follows_an_image_rotation(
    detector: FaceDetector, landmarker: FaceLandmarker, photo: Photo, degrees: float
) -> None:
    image = photo("obama.jpg")
    upright = _only_face(detector, landmarker, image)
    h, w = image.shape[:2]
    # cv2 angles are counter-clockwise on screen; roll > 0 is clockwise, hence the minus sign
    turned = cv2.warpAffine(image, cv2.getRotationMatrix2D((w / 2, h / 2), -degrees, 1.0), (w, h))
    face = _only_face(detector, landmarker, turned)
    assert face.roll is not None and upright.roll is not None
    assert face.roll - upright.roll == pytest.approx(degrees, abs=4)


def test_mouth_opening(detector: FaceDetector, landmarker: FaceLandmarker, photo: Photo) -> None:
    talking = _only_face(detector, landmarker, photo("obama2.jpg")).mouth_open
    closed = _only_face(detector, landmarker, photo("biden.jpg")).mouth_open
    assert talking is not None and closed is not None
    assert talking > 0.25 > 0.1 > closed


@pytest.mark.parametrize(("name", "faces"), [("zidane.jpg", 2), ("bus.jpg", 2), ("rocket.jpg", 0), ("page.png", 0)])
def test_face_counts(detector: FaceDetector, photo: Photo, name: str, faces: int) -> None:
    assert len(detector.detect(photo(name))) == faces


def test_int8_parity_gates_pass(models_dir: Path, photo: Photo) -> None:
    photos = {name: photo(name) for name in detector_parity.FACE_PHOTOS}
    for parity, model in ((detector_parity, "face_detector"), (landmark_parity, "face_landmarks")):
        result = parity.check(models_dir / f"{model}.float.tflite", models_dir / f"{model}.int8.tflite", photos)
        assert result.passed, result.failures
    assert result.figures["max_pose_delta_deg"] < 5


# --- model-file errors ---------------------------------------------------------------------------------

MODEL_CLASSES = [(FaceDetector, "face_detector"), (FaceLandmarker, "face_landmarks")]


@pytest.mark.parametrize(("cls", "model"), MODEL_CLASSES)
def test_missing_model_file(tmp_path: Path, cls: type, model: str) -> None:
    with pytest.raises(ModelError, match=rf"{model}\.int8\.tflite does not exist"):
        cls(tmp_path / f"{model}.int8.tflite")


@pytest.mark.parametrize(("cls", "model"), MODEL_CLASSES)
def test_corrupt_model_file(tmp_path: Path, cls: type, model: str) -> None:
    path = tmp_path / f"{model}.int8.tflite"
    path.write_bytes(b"TFL3" + bytes(range(256)) * 8)
    with pytest.raises(ModelError, match=rf"{model}\.int8\.tflite is not a loadable TFLite model"):
        cls(path)


@pytest.mark.parametrize(("cls", "other"), [(FaceDetector, "face_landmarks"), (FaceLandmarker, "face_detector")])
def test_wrong_model_file(models_dir: Path, cls: type, other: str) -> None:
    with pytest.raises(ModelError, match=rf"{other}\.int8\.tflite has input shapes .* expected"):
        cls(models_dir / f"{other}.int8.tflite")
