"""Face identity: alignment maths, cosine, and the int8 models telling Obama from Biden."""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from edge_app.vision.face import Face, FaceDetector, FaceLandmarker
from edge_app.vision.identity import (
    EMBED_SIZE,
    MATCH_THRESHOLD,
    FaceEmbedder,
    IdentityVerifier,
    align_face,
    alignment_points,
    cosine,
    l2_normalise,
    similarity_transform,
    template,
)
from edge_app.vision.runtime import ModelError
from tools.model_build.parity import face_embedding as parity

Photo = Callable[[str], np.ndarray]
OBAMA = ["obama.jpg", "obama2.jpg", "obama3.jpg"]

def _verifier(models_dir: Path, runtime: str | None = None) -> IdentityVerifier:
    return IdentityVerifier(
        FaceDetector(models_dir / "face_detector.int8.tflite", runtime=runtime),
        FaceLandmarker(models_dir / "face_landmarks.int8.tflite", runtime=runtime),
        FaceEmbedder(models_dir / "face_embedding.int8.tflite", runtime=runtime),
    )


@pytest.fixture(scope="module")
def verifier(models_dir: Path) -> IdentityVerifier:
    return _verifier(models_dir)


# --- pure logic -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scale", "degrees", "shift"), [(1.0, 0.0, (0, 0)), (2.5, 30.0, (10, -4)), (0.4, -120.0, (-50, 80))]
)
def test_similarity_transform_recovers_a_known_transform(scale: float, degrees: float, shift: tuple) -> None:
    angle = np.radians(degrees)
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = np.array([[10, 20], [40, 22], [25, 40], [14, 55], [38, 57]], np.float64)
    dst = src @ rotation.T + shift
    matrix = similarity_transform(src, dst)
    assert np.allclose(matrix[:, :2], rotation, atol=1e-9)
    assert np.allclose(matrix[:, 2], shift, atol=1e-9)


def test_similarity_transform_is_least_squares_without_reflection() -> None:
    src = np.array([[0, 0], [1, 0], [0, 1]], np.float64)
    mirrored = src * [-1, 1]
    matrix = similarity_transform(src, mirrored)
    assert np.linalg.det(matrix[:, :2]) > 0, "a similarity transform never mirrors"
    with pytest.raises(ValueError, match="same point"):
        similarity_transform(np.ones((3, 2)), src)


@pytest.mark.parametrize(("size", "zoom"), [(112, 1.0), (224, 1.0), (224, 1.1)])
def test_template(size: int, zoom: float) -> None:
    points = template(size, zoom)
    assert points.shape == (5, 2)
    eye_span = points[1, 0] - points[0, 0]
    assert eye_span == pytest.approx((73.5318 - 38.2946) * size / 112 / zoom)
    assert points[:, 0].mean() == pytest.approx(size / 2, abs=0.02 * size), "the face is centred"


def test_alignment_puts_the_points_on_the_template() -> None:
    landmarks = np.zeros((468, 3), np.float32)
    wanted = {33: (300, 200), 133: (320, 202), 362: (360, 204), 263: (380, 206), 1: (340, 240), 61: (315, 280),
              291: (365, 282)}
    for index, xy in wanted.items():
        landmarks[index, :2] = xy
    face = Face(box=(280, 160, 400, 300), score=1.0, keypoints=np.zeros((6, 2), np.float32), landmarks=landmarks)
    src, dst = alignment_points(face)
    assert src.shape == dst.shape == (5, 2)
    assert np.allclose(src[0], (310, 201)) and np.allclose(src[1], (370, 205)), "eye centres"
    matrix = similarity_transform(src, dst)
    assert np.abs(src @ matrix[:, :2].T + matrix[:, 2] - dst).max() < 8, "a good face fits the template"
    crop = align_face(np.zeros((480, 640, 3), np.uint8), face)
    assert crop.shape == (EMBED_SIZE, EMBED_SIZE, 3)


def test_alignment_without_landmarks_uses_detector_keypoints() -> None:
    keypoints = np.array([[100, 100], [140, 100], [120, 120], [120, 140], [80, 105], [160, 105]], np.float32)
    src, dst = alignment_points(Face(box=(70, 70, 170, 170), score=1.0, keypoints=keypoints))
    assert src.shape == dst.shape == (4, 2)
    assert np.allclose(dst[3], template()[3:].mean(axis=0)), "mouth centre goes between the mouth corners"


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [([1, 0, 0], [1, 0, 0], 1.0), ([1, 0, 0], [0, 3, 0], 0.0), ([1, 2, 3], [-2, -4, -6], -1.0),
     ([1, 1, 0], [5, 0, 0], np.sqrt(0.5)), ([0.2, 0.1], [200, 100], 1.0)],
)
def test_cosine(a: list[float], b: list[float], expected: float) -> None:
    assert cosine(np.array(a, float), np.array(b, float)) == pytest.approx(expected)
    assert np.linalg.norm(l2_normalise(np.array(a, float))) == pytest.approx(1.0)


# --- real models on real photos ------------------------------------------------------------------------


def test_obama_matches_obama_and_not_biden(models_dir: Path, photo: Photo, runtime: str) -> None:
    verifier = _verifier(models_dir, runtime)
    templates = {name: verifier.enroll(photo(name)) for name in [*OBAMA, "biden.jpg"]}
    for vector in templates.values():
        assert vector.shape == (1024,) and np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    margin = 0.05
    for a, b in combinations(OBAMA, 2):
        assert cosine(templates[a], templates[b]) >= MATCH_THRESHOLD + margin, f"{a} vs {b}"
    for name in OBAMA:
        assert cosine(templates[name], templates["biden.jpg"]) <= MATCH_THRESHOLD - margin, f"{name} vs biden"


@pytest.mark.parametrize(("enrolled", "probe", "match"), [
    ("obama.jpg", "obama2.jpg", True), ("obama3.jpg", "obama.jpg", True), ("obama2.jpg", "biden.jpg", False),
    ("biden.jpg", "obama3.jpg", False), ("grace_hopper.jpg", "obama.jpg", False),
])
def test_verify(verifier: IdentityVerifier, photo: Photo, enrolled: str, probe: str, match: bool) -> None:
    verifier.enroll(photo(enrolled))
    result = verifier.verify(photo(probe))
    assert result.match is match, f"similarity {result.similarity:.3f}"
    assert result.face is not None and result.face.landmarks is not None


def test_verify_without_a_face(verifier: IdentityVerifier, photo: Photo) -> None:
    verifier.enroll(photo("obama.jpg"))
    result = verifier.verify(photo("rocket.jpg"))
    assert (result.match, result.similarity, result.face) == (False, 0.0, None)
    with pytest.raises(ValueError, match="no face found in the enrolment photo"):
        verifier.enroll(photo("page.png"))


def test_verify_needs_an_enrolment(models_dir: Path, photo: Photo) -> None:
    with pytest.raises(RuntimeError, match="enroll"):
        _verifier(models_dir).verify(photo("obama.jpg"))


def test_int8_parity_gate_passes(models_dir: Path, photo: Photo) -> None:
    photos = {name: photo(name) for name in (*parity.IDENTITY_PHOTOS, "grace_hopper.jpg", "zidane.jpg")}
    files = [models_dir / f"face_embedding.{quant}.tflite" for quant in ("float", "int8")]
    result = parity.check(files[0], files[1], photos)
    assert result.passed, result.failures
    assert result.figures["min_cosine"] >= 0.98


def test_missing_corrupt_and_wrong_model_files(models_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"face_embedding\.int8\.tflite does not exist"):
        FaceEmbedder(tmp_path / "face_embedding.int8.tflite")
    corrupt = tmp_path / "face_embedding.float.tflite"
    corrupt.write_bytes(b"\x00" * 4096)
    with pytest.raises(ModelError, match=r"face_embedding\.float\.tflite is not a loadable TFLite model"):
        FaceEmbedder(corrupt)
    with pytest.raises(ModelError, match=r"face_landmarks\.int8\.tflite has input shapes .* expected"):
        FaceEmbedder(models_dir / "face_landmarks.int8.tflite")
