"""``python -m tools.evaluate [--scenarios DIR] [--only NAME] [--out FILE]``: run and score every scenario.

Each rendered scenario (``make scenarios``) is played through the same session loop the device runs,
as fast as it can analyse every frame, with the int8 models, its audio track and its enrolled photo.
Scenarios come in two sets named in their files: ``tuning`` (thresholds and presets may be chosen on it)
and ``check`` (never tuned on). Writes ``build/eval/scenarios.json`` with per-kind precision, recall and
delay for each set under ``tuning`` and ``check``. Exits 1 when any scenario raises a false alert, when
a tuning truth alert is missed or late, or when the check set does worse on a kind than its committed
floor (``scenarios/check_floor.json``: how many truth alerts of a kind the check set may still miss or
raise late; a kind not named there may miss none). The floor is a record of the last measurement and only
ever tightens: a change that helps tuning and hurts the check set fails here.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from edge_app.atomic import write_bytes_atomic
from edge_app.config import parse
from edge_app.loop import SessionRunner
from edge_app.vision.identity import enroll
from edge_app.vision.models import VisionModels, load_models
from edge_app.vision.preprocess import read_rgb
from tools.evaluate.score import Truth, raised_alerts, score, totals
from tools.fixtures import photo

ROOT = Path(__file__).resolve().parents[2]
SETS = ("tuning", "check")
FLOOR = ROOT / "scenarios" / "check_floor.json"


def below_floor(kinds: dict[str, Any], floor: dict[str, dict[str, int]]) -> list[str]:
    """Check-set kinds missing or late more often than their floor allows (a kind without a floor: never)."""
    found = []
    for kind, k in kinds.items():
        allowed = floor.get(kind, {})
        missed, late = k["truth"] - k["matched"], k["matched"] - k["on_time"]
        for what, count in (("missed", missed), ("late", late)):
            if count > allowed.get(what, 0):
                found.append(f"check {kind}: {count} of {k['truth']} {what}, the floor allows {allowed.get(what, 0)}")
    return found


def run_scenario(folder: Path, models: VisionModels, work: Path) -> dict[str, Any]:
    truth = json.loads((folder / "truth.json").read_text())
    data: dict[str, Any] = {
        "device_id": "unit-eval", "data_dir": str(work / folder.name),
        "camera": {"type": "scenario", "path": str(folder), "realtime": False},
        "analysis": {"calibration_seconds": truth.get("calibration_seconds", 5)},
    }
    if (folder / "audio.wav").is_file():
        data["audio"] = {"type": "wav", "path": str(folder / "audio.wav"), "realtime": False}
    config = parse(data, f"{folder.name} config", environ={})
    template = enroll(models, read_rgb(str(photo(truth["enrolled"])))) if truth.get("enrolled") else None
    messages: list[dict[str, Any]] = []
    began = time.monotonic()
    stats = SessionRunner(config, messages.append, models, template).run(threading.Event())
    wall = time.monotonic() - began
    events = [Truth(a["kind"], float(a["start"]), float(a["end"]), float(a["allowed_delay"])) for a in truth["alerts"]]
    result = score(events, raised_alerts(messages, stats.media_seconds))
    calibration = next((m for m in messages if m["type"] == "calibration"), None)
    return {"name": folder.name, "set": truth["set"], "view": truth["view"], "frames": stats.frames,
            "seconds": round(stats.media_seconds, 2),
            "wall_seconds": round(wall, 2), "truth": truth["alerts"], "calibration": calibration,
            "alerts": [m for m in messages if m["type"] == "alert"], **result}


def print_kinds(title: str, kinds: dict[str, Any]) -> None:
    print(f"\n{title}\n{'kind':<18} truth raised matched false precision recall max delay")
    for kind, k in kinds.items():
        print(f"{kind:<18} {k['truth']:5d} {k['raised']:6d} {k['matched']:7d} {k['false']:5d} {k['precision']!s:>9} "
              f"{k['recall']!s:>6} {k['max_delay_s']!s:>9}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenarios", type=Path, default=ROOT / "build" / "scenarios")
    parser.add_argument("--only", action="append", help="only this scenario (repeatable)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "eval" / "scenarios.json")
    args = parser.parse_args(argv)
    folders = sorted(p.parent for p in args.scenarios.glob("*/truth.json"))
    if args.only:
        folders = [f for f in folders if f.name in args.only]
    if not folders:
        print(f"error: no rendered scenarios under {args.scenarios}: run `make scenarios`", file=sys.stderr)
        return 2
    models = load_models(quant="int8")
    results = []
    for folder in folders:
        result = run_scenario(folder, models, args.out.parent / "data")
        results.append(result)
        problems = result["failures"] + result["false_alerts"]
        verdict = "ok" if not problems else "FAIL: " + "; ".join(problems)
        print(f"{result['set']:<6} {folder.name:<26} {result['frames']:5d} frames {result['wall_seconds']:6.1f} s  "
              f"{verdict}")
    report: dict[str, Any] = {}
    for name in SETS:
        members = [r for r in results if r["set"] == name]
        report[name] = {"scenarios": [r["name"] for r in members], "kinds": totals(members),
                        "false_alerts": sum(len(r["false_alerts"]) for r in members),
                        "perfect": not any(r["failures"] or r["false_alerts"] for r in members)}
        print_kinds(f"{name} set ({len(members)} scenarios)", report[name]["kinds"])
    floor = json.loads(FLOOR.read_text())["kinds"] if FLOOR.is_file() else {}
    regressions = below_floor(report["check"]["kinds"], floor)
    failed = [r["name"] for r in results if r["false_alerts"] or (r["set"] == "tuning" and r["failures"])]
    failed += regressions
    report |= {"kinds": totals(results), "scenarios": results, "check_floor": floor, "passed": not failed,
               "failed": failed}
    for line in regressions:
        print(f"REGRESSION {line}")
    write_bytes_atomic(args.out, json.dumps(report, indent=1).encode())
    print(f"\nwrote {args.out}: {'all scenarios pass' if not failed else 'FAILED: ' + ', '.join(failed)}")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
