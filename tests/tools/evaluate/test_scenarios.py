"""The acceptance of `make eval`: every rendered scenario through the whole edge pipeline (int8 models).

Every ground-truth alert must be raised within its kind's minimum duration + 1 s, and the normal
scenario must raise nothing. `make test` renders the scenarios first, so their absence is a failure.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.evaluate.__main__ import main

ROOT = Path(__file__).resolve().parents[3]
SCENARIOS = ROOT / "build" / "scenarios"
REQUIRED = {"normal", "leaves_and_returns", "second_person", "phone_used", "book_on_desk", "camera_covered",
            "camera_knocked", "looking_away", "talking", "substitute_candidate"}


def test_every_scenario_raises_its_alerts_in_time_and_normal_raises_none(models_dir: Path, tmp_path: Path) -> None:
    rendered = {p.parent.name for p in SCENARIOS.glob("*/truth.json")}
    if not rendered >= REQUIRED:
        pytest.fail(f"scenarios missing from {SCENARIOS}: {sorted(REQUIRED - rendered)}; run `make scenarios`")
    out = tmp_path / "scenarios.json"
    code = main(["--scenarios", str(SCENARIOS), "--out", str(out)])
    report = json.loads(out.read_text())
    failures = {s["name"]: s["failures"] for s in report["scenarios"] if s["failures"]}
    assert code == 0 and report["passed"], failures or report["failed"]
    normal = next(s for s in report["scenarios"] if s["name"] == "normal")
    assert normal["alerts"] == []
    for kind, figures in report["kinds"].items():
        assert figures["recall"] in (None, 1.0), kind
