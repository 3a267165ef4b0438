"""Load the device's models from a build folder and its manifest.

``load_models(dir, quant="int8")`` returns a :class:`VisionModels` bundle with one object per model
kind. The manifest says which file is which; a missing manifest or file is a :class:`ModelError`
that says how to build them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from edge_app.vision.detector import ObjectDetector
from edge_app.vision.face import FaceDetector, FaceLandmarker
from edge_app.vision.identity import FaceEmbedder
from edge_app.vision.pose import PoseEstimator
from edge_app.vision.runtime import ModelError

Quant = Literal["int8", "float"]
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "build" / "models"


def read_manifest(models_dir: Path) -> dict[str, Any]:
    path = models_dir / "manifest.json"
    if not path.is_file():
        raise ModelError(f"{path} does not exist: build the models with `make models`")
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
        manifest["models"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path} is not a model manifest ({exc}); rebuild with `make models`") from exc
    return manifest


def model_path(models_dir: Path, manifest: dict[str, Any], name: str, quant: Quant) -> Path:
    try:
        return models_dir / manifest["models"][name]["files"][quant]["file"]
    except KeyError as exc:
        raise ModelError(f"{models_dir}/manifest.json lists no {quant} model {name!r}") from exc


@dataclass
class VisionModels:
    detector: ObjectDetector
    pose: PoseEstimator
    face_detector: FaceDetector
    face_landmarks: FaceLandmarker
    face_embedding: FaceEmbedder
    quant: Quant
    runtime: str


def load_models(
    models_dir: Path = DEFAULT_DIR, quant: Quant = "int8", threads: int = 2, runtime: str | None = None
) -> VisionModels:
    manifest = read_manifest(models_dir)

    def path(name: str) -> Path:
        return model_path(models_dir, manifest, name, quant)

    options: dict[str, Any] = {"threads": threads, "runtime": runtime}
    detector = ObjectDetector(path("detector"), **options)
    return VisionModels(
        detector=detector,
        pose=PoseEstimator(path("pose"), **options),
        face_detector=FaceDetector(path("face_detector"), **options),
        face_landmarks=FaceLandmarker(path("face_landmarks"), **options),
        face_embedding=FaceEmbedder(path("face_embedding"), **options),
        quant=quant,
        runtime=detector.model.runtime,
    )
