"""Shared fixtures: built models and real photos from registry packages (fetched and cached)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_app.vision.preprocess import read_rgb
from tools.fixtures import photo as fixture_photo

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "build" / "models"
FIND_PHONE = ROOT.parent / "shared" / "fixtures" / "find_phone"


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The built models; `make test` builds them first, so their absence is an error, not a skip."""
    if not (MODELS / "manifest.json").is_file():
        pytest.fail(f"{MODELS}/manifest.json is missing: run `make models` (make test does it)")
    return MODELS


@pytest.fixture(scope="session")
def photo():
    """photo("bus.jpg") -> RGB uint8 array of a fixture photo."""
    cache: dict[str, np.ndarray] = {}

    def load(name: str) -> np.ndarray:
        if name not in cache:
            cache[name] = read_rgb(str(fixture_photo(name)))
        return cache[name]

    return load
