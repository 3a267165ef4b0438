"""``python -m tools.evaluate [--scenarios DIR] [--only NAME] [--out FILE]``: run and score every scenario.

Each rendered scenario (``make scenarios``) is played through the same session loop the device runs,
as fast as it can analyse every frame, with the int8 models, its audio track and its enrolled photo.
Writes ``build/eval/scenarios.json`` and exits 1 when a truth alert is missed or late, or when the
normal scenario raises anything.
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
from edge_app.rules.config import KIND_RULES
from edge_app.vision.identity import enroll
from edge_app.vision.models import VisionModels, load_models
from edge_app.vision.preprocess import read_rgb
from tools.evaluate.score import Truth, raised_alerts, score
from tools.fixtures import photo

ROOT = Path(__file__).resolve().parents[2]
QUIET_SCENARIO = "normal"


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
    events = [Truth(a["kind"], float(a["start"]), float(a["end"])) for a in truth["alerts"]]
    min_durations = {kind: config.rules.rule(kind).min_duration for kind in KIND_RULES}
    result = score(events, raised_alerts(messages, stats.media_seconds), min_durations)
    calibration = next((m for m in messages if m["type"] == "calibration"), None)
    return {"name": folder.name, "frames": stats.frames, "seconds": round(stats.media_seconds, 2),
            "wall_seconds": round(wall, 2), "truth": truth["alerts"], "calibration": calibration,
            "alerts": [m for m in messages if m["type"] == "alert"], **result}


def aggregate(results: list[dict[str, Any]]) -> dict[str, Any]:
    totals: dict[str, dict[str, Any]] = {}
    for result in results:
        for kind, figures in result["kinds"].items():
            into = totals.setdefault(kind, {"truth": 0, "raised": 0, "matched": 0, "delays": []})
            for key in ("truth", "raised", "matched"):
                into[key] += figures[key]
            if figures["delay_s"]:
                into["delays"].append(figures["delay_s"]["max"])
    out = {}
    for kind, t in sorted(totals.items()):
        out[kind] = {"truth": t["truth"], "raised": t["raised"], "matched": t["matched"],
                     "precision": round(t["matched"] / t["raised"], 3) if t["raised"] else None,
                     "recall": round(t["matched"] / t["truth"], 3) if t["truth"] else None,
                     "max_delay_s": max(t["delays"]) if t["delays"] else None}
    return out


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
        problems = result["failures"] + (result["unexpected"] if folder.name == QUIET_SCENARIO else [])
        verdict = "ok" if not problems else "FAIL: " + "; ".join(problems)
        extra = f" (also: {'; '.join(result['unexpected'])})" if result["unexpected"] and not problems else ""
        print(f"{folder.name:<22} {result['frames']:5d} frames {result['wall_seconds']:6.1f} s  {verdict}{extra}")
    kinds = aggregate(results)
    print(f"\n{'kind':<18} truth raised matched precision recall max delay")
    for kind, k in kinds.items():
        print(f"{kind:<18} {k['truth']:5d} {k['raised']:6d} {k['matched']:7d} {k['precision']!s:>9} "
              f"{k['recall']!s:>6} {k['max_delay_s']!s:>9}")
    failed = [r["name"] for r in results
              if r["failures"] or (r["name"] == QUIET_SCENARIO and r["unexpected"])]
    report = {"scenarios": results, "kinds": kinds, "passed": not failed, "failed": failed}
    write_bytes_atomic(args.out, json.dumps(report, indent=1).encode())
    print(f"\nwrote {args.out}: {'all scenarios pass' if not failed else 'FAILED: ' + ', '.join(failed)}")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
