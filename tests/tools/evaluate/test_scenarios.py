"""The acceptance of `make eval`: every rendered scenario through the whole edge pipeline (int8 models).

Every ground-truth alert must be raised within its own allowed delay (fixed in the scenario file), and
no scenario of either set may raise a false alert. `make test` renders the scenarios first, so their
absence is a failure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import pytest

from tests.need import need
from tools.evaluate.__main__ import FLOOR, below_floor, main
from tools.scenarios import sources
from tools.scenarios.spec import AlertKind, load_spec, phone_photos

ROOT = Path(__file__).resolve().parents[3]
SCENARIOS = ROOT / "build" / "scenarios"
KINDS = set(get_args(AlertKind))
SPECS = {p.stem: load_spec(p) for p in (ROOT / "scenarios").glob("*.toml")}
WITH_PHONE = {name for name, spec in SPECS.items() if phone_photos(spec)}


@pytest.mark.parametrize("group", ["without_phone", "with_phone"])
def test_every_scenario_of_both_sets_raises_its_alerts_in_time_and_nothing_false(group: str, models_dir: Path,
                                                                                 tmp_path: Path) -> None:
    required = WITH_PHONE if group == "with_phone" else set(SPECS) - WITH_PHONE
    if group == "with_phone":
        need(sources.phone_photos_available(), f"{sorted(WITH_PHONE)} cut their phone from the labelled phone "
             f"photos, not present at {sources.find_phone_dir()} (INVIGIL_FIND_PHONE points elsewhere)")
    rendered = {p.parent.name for p in SCENARIOS.glob("*/truth.json")}
    if not rendered >= required:
        pytest.fail(f"scenarios missing from {SCENARIOS}: {sorted(required - rendered)}; run `make scenarios`")
    out = tmp_path / "scenarios.json"
    code = main(["--scenarios", str(SCENARIOS), "--out", str(out)] + [f"--only={name}" for name in sorted(required)])
    report = json.loads(out.read_text())
    problems = {s["name"]: s["failures"] + s["false_alerts"] for s in report["scenarios"]
                if s["failures"] or s["false_alerts"]}
    assert code == 0 and report["passed"], problems or report["failed"]
    for name in ("tuning", "check"):
        assert report[name]["scenarios"], name
        assert report[name]["false_alerts"] == 0
        for kind, figures in report[name]["kinds"].items():
            assert figures["precision"] in (None, 1.0), (name, kind, figures)  # None: nothing raised
    for kind, figures in report["tuning"]["kinds"].items():
        assert figures["recall"] == 1.0 and figures["on_time"] == figures["truth"], (kind, figures)


@pytest.mark.parametrize(
    ("figures", "floor", "regressions"),
    [
        ({"truth": 2, "matched": 2, "on_time": 2}, {}, 0),
        ({"truth": 2, "matched": 1, "on_time": 1}, {}, 1),
        ({"truth": 2, "matched": 1, "on_time": 1}, {"phone": {"missed": 1}}, 0),
        ({"truth": 2, "matched": 1, "on_time": 0}, {"phone": {"missed": 1}}, 1),
        ({"truth": 2, "matched": 2, "on_time": 1}, {"phone": {"late": 1}}, 0),
        ({"truth": 1, "matched": 0, "on_time": 0}, {"phone": {"missed": 1, "late": 0}}, 0),
    ],
)
def test_the_check_floor_allows_only_what_it_names(figures: dict[str, int], floor: dict[str, dict[str, int]],
                                                   regressions: int) -> None:
    assert len(below_floor({"phone": figures}, floor)) == regressions


def test_the_committed_check_floor_names_real_kinds_and_small_counts() -> None:
    floor = json.loads(FLOOR.read_text())
    for kind, allowed in floor["kinds"].items():
        assert kind in KINDS and set(allowed) <= {"missed", "late"}, kind
        assert all(isinstance(n, int) and 0 < n <= 2 for n in allowed.values()), kind
