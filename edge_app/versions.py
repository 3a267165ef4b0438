"""What the unit runs, as it reports it (enrolment, its page): the software release and the models."""

from __future__ import annotations

import contextlib
import hashlib
import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from edge_app.config import EdgeConfig
from edge_app.vision.models import read_manifest
from edge_app.vision.runtime import ModelError

PACKAGE = "invigil"


def installed_version() -> str | None:
    """The running release's version: its signed bundle's manifest (releases/<version>/manifest.json beside
    the app folder), else the installed package's version; None when neither names one."""
    release = Path(__file__).resolve().parents[2] / "manifest.json"
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        return str(json.loads(release.read_text(encoding="utf-8"))["version"])
    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return None


def model_version(config: EdgeConfig) -> str:
    """``<quant>-<12 hex>``: a digest of the SHA-256 of every model file the unit runs (from manifest.json),
    so units with the same models report the same version; ``none`` when no models are installed."""
    try:
        manifest = read_manifest(config.models.dir)
        files = sorted(f"{name}:{entry['files'][config.models.quant]['sha256']}"
                       for name, entry in manifest["models"].items())
    except (ModelError, KeyError, TypeError, AttributeError):
        return "none"
    return f"{config.models.quant}-{hashlib.sha256(chr(10).join(files).encode()).hexdigest()[:12]}"
