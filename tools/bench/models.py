"""Model figures: latency (float vs int8, 1 and 2 threads), peak memory, phone recall.

``python -m tools.bench.models`` prints a table and writes ``build/bench/models.json``. All figures
come from one run on this machine, so ratios between rows are meaningful even when the machine is
busy; absolute numbers are x86 figures, not Raspberry Pi ones.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge_app.vision.models import DEFAULT_DIR, Quant, model_path, read_manifest
from edge_app.vision.runtime import TFLiteModel, available_runtimes
from tools.bench import phones, write_report

ROOT = Path(__file__).resolve().parents[2]
THRESHOLDS = (0.5, 0.4, 0.35, 0.3, 0.25, 0.15)
# full frame; plus the upright crops; plus each crop turned a quarter left and right (as the unit does)
MODES = (("full_frame", False, False), ("with_crops", True, False), ("with_turned_crops", True, True))


def latency(path: Path, threads: int, runs: int, runtime: str | None) -> dict[str, float]:
    model = TFLiteModel(path, threads=threads, runtime=runtime)
    rng = np.random.default_rng(0)
    inputs = [rng.uniform(0, 1, spec.shape).astype(np.float32) for spec in model.inputs]
    for _ in range(3):
        model.run(*inputs)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        model.run(*inputs)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {"p50_ms": round(statistics.median(samples), 2), "p90_ms": round(samples[int(0.9 * (len(samples) - 1))], 2)}


MEMORY_PROBE = """
import resource, sys
from pathlib import Path
import numpy as np
from edge_app.vision.models import load_models
models = load_models(Path(sys.argv[1]), sys.argv[2])
image = (np.random.default_rng(0).uniform(0, 255, (720, 1280, 3))).astype(np.uint8)
models.detector.detect(image); models.pose.estimate(image)
models.face_detector.detect(image)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_memory_mib(models_dir: Path, quant: str) -> float:
    """Peak RSS of a fresh process that loads all five models and runs them once."""
    done = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(models_dir), quant], capture_output=True,
                          text=True, check=True, cwd=ROOT)
    return round(int(done.stdout.split()[-1]) / 1024, 1)


def phone_figures(models_dir: Path, manifest: dict[str, Any], quant: Quant) -> dict[str, Any]:
    from edge_app.crops import QUARTER_TURNS, detect_turned
    from edge_app.vision.detector import ObjectDetector
    from edge_app.vision.preprocess import read_rgb

    labelled = phones.load_labels()
    if not labelled:
        return {"skipped": f"no labelled phone photos at {phones.find_phone_dir()}"}
    detector = ObjectDetector(model_path(models_dir, manifest, "detector", quant), score_threshold=min(THRESHOLDS))

    def look(image: np.ndarray, crops: bool, turned: bool = False) -> list[Any]:
        found = detector.detect(image)
        if crops:
            for region in phones.crop_regions(image.shape[1], image.shape[0]):
                found += detector.detect(image, region)
                for quarter in QUARTER_TURNS if turned else ():
                    found += detect_turned(detector, image, region, quarter)
        return found

    images = [read_rgb(str(item.path)) for item in labelled]
    without = [read_rgb(str(path)) for path in phones.negative_photos()]
    figures: dict[str, Any] = {"photos": len(images), "photos_without_phone": len(without)}
    for mode, crops, turned in MODES:
        per_photo = [(look(image, crops, turned), image.shape[1], image.shape[0], item.x, item.y)
                     for image, item in zip(images, labelled, strict=True)]
        negatives = [look(image, crops, turned) for image in without]
        figures[mode] = {
            str(t): {"recall": round(phones.recall_at(per_photo, t), 3),
                     "false_phone_rate": round(phones.false_rate_at(negatives, t), 3)}
            for t in THRESHOLDS
        }
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--runs", type=int, default=int(os.environ.get("INVIGIL_BENCH_RUNS", "40")))
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench" / "models.json")
    parser.add_argument("--phones-only", action="store_true", help="only the phone figures (int8), no latency")
    args = parser.parse_args(argv)
    if args.phones_only:
        manifest = read_manifest(args.models)
        only = {"phones": {"int8": phone_figures(args.models, manifest, "int8")}}
        print_phones(only["phones"])
        write_report(only, args.out.with_name("phones.json"))
        return 0
    manifest = read_manifest(args.models)
    runtime = available_runtimes()[0]
    report: dict[str, Any] = {"runtime": runtime, "cpu_count": os.cpu_count(), "runs": args.runs, "latency": {}}
    print(f"runtime {runtime}, {os.cpu_count()} cores, {args.runs} runs per figure (median / p90 ms)")
    print(f"{'model':15s} {'float 1t':>15s} {'float 2t':>15s} {'int8 1t':>15s} {'int8 2t':>15s} {'int8/float 2t':>14s}")
    for name in manifest["models"]:
        row: dict[str, Any] = {}
        for quant in ("float", "int8"):
            for threads in (1, 2):
                path = model_path(args.models, manifest, name, quant)
                row[f"{quant}_{threads}t"] = latency(path, threads, args.runs, runtime)
        report["latency"][name] = row
        ratio = row["int8_2t"]["p50_ms"] / row["float_2t"]["p50_ms"]
        cells = " ".join(f"{row[k]['p50_ms']:7.1f}/{row[k]['p90_ms']:7.1f}" for k in row)
        print(f"{name:15s} {cells} {ratio:14.2f}")
    report["peak_memory_mib"] = {quant: peak_memory_mib(args.models, quant) for quant in ("float", "int8")}
    print(f"peak memory, all models loaded and run once: float {report['peak_memory_mib']['float']} MiB, "
          f"int8 {report['peak_memory_mib']['int8']} MiB")
    quants: tuple[Quant, ...] = ("float", "int8")
    report["phones"] = {quant: phone_figures(args.models, manifest, quant) for quant in quants}
    print_phones(report["phones"])
    write_report(report, args.out)
    return 0


def print_phones(by_quant: dict[str, Any]) -> None:
    for quant, figures in by_quant.items():
        if "skipped" in figures:
            print(f"phones ({quant}): {figures['skipped']}")
            continue
        print(f"phones ({quant}, {figures['photos']} phone photos, {figures['photos_without_phone']} without): "
              "recall / false-phone rate")
        for mode, _, _ in MODES:
            cells = "; ".join(f">={t}: {v['recall']:.2f} / {v['false_phone_rate']:.2f}"
                              for t, v in figures[mode].items())
            print(f"  {mode:<17} {cells}")


if __name__ == "__main__":
    sys.exit(main())
