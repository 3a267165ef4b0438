"""--check on the rendered scenarios: every intended signal is seen by the int8 models (and a missing one fails)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edge_app.vision.models import load_models
from tools.scenarios import sources
from tools.scenarios.check import check_all, check_scenario
from tools.scenarios.render import DEFINITIONS, OUT, render


@pytest.fixture(scope="module")
def rendered() -> list[Path]:
    """Every committed scenario, rendered into build/scenarios (skipped when the cached render is current)."""
    if not (sources.find_phone_dir() / "labels.txt").is_file():
        pytest.skip(f"labelled phone photos not present at {sources.find_phone_dir()}")
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed: apt-get install -y --no-install-recommends espeak-ng")
    return [render(path, OUT).folder for path in sorted(DEFINITIONS.glob("*.toml"))]


@pytest.mark.slow
def test_every_rendered_scenario_shows_its_signals(rendered: list[Path], models_dir: Path) -> None:
    assert check_all(rendered, frames_per_segment=1)


@pytest.mark.slow
def test_a_claimed_signal_that_is_not_in_the_video_fails(rendered: list[Path], models_dir: Path,
                                                         tmp_path: Path) -> None:
    folder = tmp_path / "fake_phone"
    shutil.copytree(OUT / "normal", folder)
    truth = json.loads((folder / "truth.json").read_text())
    truth["segments"][0]["props"] = ["phone"]
    truth["sounds"] = [{"type": "bangs", "start": 20.0, "end": 24.0}]
    (folder / "truth.json").write_text(json.dumps(truth))
    ok, lines = check_scenario(load_models(models_dir), folder, frames_per_segment=1)
    assert not ok
    assert any("cell phone" in line and "FAIL" in line for line in lines)
    assert any(line.startswith("  sound bangs") and line.endswith("FAIL") for line in lines)
