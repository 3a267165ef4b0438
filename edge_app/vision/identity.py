"""Face identity: 5-point alignment, a face descriptor, cosine similarity and enrol/verify.

Model: ``faceres`` (HSE FaceRes, a MobileNetV1 trained on VGGFace2) cut at its 1024-d global-pooling
descriptor; the age/gender heads are dropped. ``mobilefacenet`` was tried first and rejected: its
192-d output is dominated by a constant vector (a grey square scores cosine 0.9999 against the mean
face), so aligned Obama/Biden pairs scored 0.99-1.00 for every input normalisation tried.

Input (found by experiment on the four face_recognition photos plus the other fixture faces): the
aligned 224x224 crop in BGR order minus the VGGFace2 channel means, unscaled (Caffe-style). RGB, or
scaling to [0, 1] or [-1, 1], shrank or erased the gap between same and different people.

Alignment: a least-squares similarity transform (rotation, uniform scale, shift) maps the eye centres,
nose tip and mouth corners from the FaceMesh landmarks onto the ArcFace 112x112 template, scaled to
224 and zoomed out by 1.1 (margins of 1.0-1.2 scored the same). Without landmarks the detector's
eyes, nose and mouth centre are used.

Threshold (``MATCH_THRESHOLD`` = 0.6): cosine of L2-normalised descriptors, whole int8 pipeline
(detector, landmarks, descriptor), enrolling each photo's face:

    pair                         float   int8
    obama ~ obama2               0.716   0.710
    obama ~ obama3               0.700   0.691
    obama2 ~ obama3              0.744   0.735
    obama / obama2 / obama3 ~ biden   0.35 / 0.44 / 0.47   0.35 / 0.43 / 0.47
    any two different people among the six fixture portraits: at most 0.47

and 105 other people's faces (the face grid of ``assets/screenshot-facematch.jpg`` in the npm package
@vladmandic/human 3.3.6, used once for this check, not a fixture) against the Obama and Biden
templates: at most 0.51. 0.6 sits between the highest different-person score (0.51) and the lowest
same-person score (0.69), about 0.09 from each. A mirrored photo of the same face scores 0.96. These
are frontal portraits; a turned head lowers same-person similarity, so enrol and re-check on the
most frontal faces seen (small |yaw|).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from edge_app.vision.face import Face, FaceDetector, FaceLandmarker, Runnable, load
from edge_app.vision.runtime import PixelInput, run_image

if TYPE_CHECKING:
    from edge_app.vision.models import VisionModels

EMBED_SIZE = 224
EMBED_OUTPUTS = ((1, 1024),)
ZOOM = 1.1
MATCH_THRESHOLD = 0.6
BGR_MEAN = np.array([91.4953, 103.8827, 131.0912], dtype=np.float32)  # VGGFace2 training means, B, G, R
# ArcFace reference points in a 112x112 crop: image-left eye, image-right eye, nose tip, mouth corners.
ARCFACE_112 = np.array(
    [(38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366), (41.5493, 92.3655), (70.7299, 92.2041)],
    dtype=np.float64,
)


def template(size: int = EMBED_SIZE, zoom: float = ZOOM) -> np.ndarray:
    """The five reference points for a ``size`` crop, zoomed out around the crop centre by ``zoom``."""
    return (ARCFACE_112 - 56.0) * (size / 112.0) / zoom + size / 2.0


def alignment_points(face: Face, size: int = EMBED_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(points in the frame, where they go in the crop): 5 from landmarks, else 4 from the detector."""
    ref = template(size)
    if face.landmarks is not None:
        p = np.asarray(face.landmarks, dtype=np.float64)[:, :2]
        src = np.stack([p[[33, 133]].mean(0), p[[362, 263]].mean(0), p[1], p[61], p[291]])
        return src, ref
    k = np.asarray(face.keypoints, dtype=np.float64)
    return k[:4], np.vstack([ref[:3], ref[3:].mean(axis=0)])


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares 2x3 similarity transform (no reflection) mapping ``src`` (N, 2) onto ``dst`` (Umeyama)."""
    src, dst = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var = (s**2).sum() / len(src)
    if var <= 0:
        raise ValueError("alignment points are all the same point")
    u, sigma, vt = np.linalg.svd(d.T @ s / len(src))
    sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rotation = u @ sign @ vt
    scale = float(np.trace(np.diag(sigma) @ sign)) / var
    shift = mu_d - scale * rotation @ mu_s
    return np.hstack([scale * rotation, shift[:, None]])


def align_face(frame: np.ndarray, face: Face, size: int = EMBED_SIZE) -> np.ndarray:
    """The aligned ``size`` x ``size`` RGB crop of ``face``."""
    src, dst = alignment_points(face, size)
    matrix = similarity_transform(src, dst)
    return cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


PIXELS = PixelInput(lambda bgr: bgr.astype(np.float32) - BGR_MEAN, bgr=True)  # BGR minus the VGGFace2 means


def embedding_input(crop: np.ndarray) -> np.ndarray:
    """Aligned RGB uint8 crop -> model input: BGR minus the VGGFace2 means, (1, 224, 224, 3) float32."""
    return PIXELS.reference(crop)


def l2_normalise(vector: np.ndarray) -> np.ndarray:
    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    return v / max(float(np.linalg.norm(v)), 1e-12)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors (normalised here, so raw descriptors are fine)."""
    return float(np.dot(l2_normalise(a), l2_normalise(b)))


class FaceEmbedder:
    """``embed(frame_rgb, face) -> (1024,)`` L2-normalised descriptor; ``threshold`` is the match cosine."""

    def __init__(
        self,
        model_path: str | Path | Runnable,
        threads: int = 2,
        runtime: str | None = None,
        threshold: float = MATCH_THRESHOLD,
    ) -> None:
        self.model = load(model_path, threads, runtime, (1, EMBED_SIZE, EMBED_SIZE, 3), EMBED_OUTPUTS)
        self.threshold = threshold

    def embed_crop(self, crop: np.ndarray) -> np.ndarray:
        return l2_normalise(run_image(self.model, crop, PIXELS)[0])

    def embed(self, frame: np.ndarray, face: Face) -> np.ndarray:
        return self.embed_crop(align_face(frame, face))


@dataclass(frozen=True)
class Verification:
    similarity: float
    match: bool
    face: Face | None  # the face that was compared (None: no face in the frame)


class IdentityVerifier:
    """Enrol a person from a photo, then check faces against them (largest face in the frame)."""

    def __init__(self, detector: FaceDetector, landmarker: FaceLandmarker, embedder: FaceEmbedder) -> None:
        self.detector, self.landmarker, self.embedder = detector, landmarker, embedder
        self.template: np.ndarray | None = None

    @property
    def threshold(self) -> float:
        return self.embedder.threshold

    def describe(self, frame: np.ndarray, face: Face | None = None) -> tuple[Face, np.ndarray] | None:
        """(face with landmarks, descriptor) of ``face`` or of the largest face found; None if none."""
        if face is None:
            faces = self.detector.detect(frame)
            if not faces:
                return None
            face = max(faces, key=lambda f: f.side)
        if face.landmarks is None:
            face = self.landmarker.landmarks(frame, face)
        return face, self.embedder.embed(frame, face)

    def enroll(self, photo: np.ndarray) -> np.ndarray:
        found = self.describe(photo)
        if found is None:
            raise ValueError("no face found in the enrolment photo")
        self.template = found[1]
        return self.template

    def verify(self, frame: np.ndarray, face: Face | None = None) -> Verification:
        if self.template is None:
            raise RuntimeError("enroll() a photo before verify()")
        found = self.describe(frame, face)
        if found is None:
            return Verification(similarity=0.0, match=False, face=None)
        similarity = cosine(found[1], self.template)
        return Verification(similarity=similarity, match=similarity >= self.threshold, face=found[0])


def enroll(models: VisionModels, photo: np.ndarray) -> np.ndarray:
    """The identity template (descriptor) of the largest face in ``photo``; ValueError if there is none."""
    verifier = IdentityVerifier(models.face_detector, models.face_landmarks, models.face_embedding)
    return verifier.enroll(photo)
