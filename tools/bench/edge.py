"""Edge figures: the analysis loop on a rendered scenario, in one run (`make bench`).

Prints and writes ``build/bench/edge.json``: analysed frames per second, loop and per-stage ms p50/p99,
peak memory (this process: models, loop and evidence ring), and loop efficiency = summed raw model time
(interpreter invoke only) / loop time. The scenario is played as fast as the loop analyses it, every
frame, so the figure is the loop's capacity; a live camera faster than that has frames dropped.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edge_app.config import parse
from edge_app.loop import SessionRunner
from edge_app.vision.identity import enroll
from edge_app.vision.models import VisionModels, load_models
from edge_app.vision.preprocess import read_rgb
from tools.bench import write_report
from tools.fixtures import photo

ROOT = Path(__file__).resolve().parents[2]


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50_ms": 0.0, "p99_ms": 0.0, "count": 0}
    return {"p50_ms": round(float(np.percentile(values, 50)), 2),
            "p99_ms": round(float(np.percentile(values, 99)), 2), "count": len(values)}


def time_invokes(models: VisionModels) -> list[float]:
    """Wrap every model's run() to add its wall time (ms) to the returned list (bench-only instrumentation)."""
    spent: list[float] = []
    for holder in (models.detector, models.pose, models.face_detector, models.face_landmarks, models.face_embedding):
        model = holder.model
        original: Callable[..., list[np.ndarray]] = model.run

        def timed(*inputs: np.ndarray, _run: Callable[..., list[np.ndarray]] = original) -> list[np.ndarray]:
            begun = time.perf_counter()
            try:
                return _run(*inputs)
            finally:
                spent.append((time.perf_counter() - begun) * 1000)

        model.run = timed  # type: ignore[method-assign]
    return spent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", type=Path, default=ROOT / "build" / "scenarios" / "normal")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench" / "edge.json")
    args = parser.parse_args(argv)
    truth_file = args.scenario / "truth.json"
    if not truth_file.is_file():
        print(f"error: {args.scenario} is not a rendered scenario: run `make scenarios`", file=sys.stderr)
        return 2
    truth = json.loads(truth_file.read_text())
    models = load_models(quant="int8", threads=args.threads)
    template = enroll(models, read_rgb(str(photo(truth["enrolled"])))) if truth.get("enrolled") else None
    data: dict[str, Any] = {"device_id": "unit-bench", "data_dir": str(ROOT / "build" / "bench" / "edge-data"),
                            "camera": {"type": "scenario", "path": str(args.scenario), "realtime": False},
                            "models": {"threads": args.threads}}
    if (args.scenario / "audio.wav").is_file():
        data["audio"] = {"type": "wav", "path": str(args.scenario / "audio.wav"), "realtime": False}
    config = parse(data, "bench config", environ={})
    invokes = time_invokes(models)
    stats = SessionRunner(config, lambda message: None, models, template).run(threading.Event())
    loop_total = sum(stats.loop_ms)
    report = {
        "scenario": args.scenario.name, "threads": args.threads, "frames": stats.frames,
        "media_seconds": round(stats.media_seconds, 2), "wall_seconds": round(stats.wall_seconds, 2),
        "analysed_fps": round(stats.frames / stats.wall_seconds, 2) if stats.wall_seconds else 0.0,
        "loop": percentiles(stats.loop_ms),
        "stages": {name: percentiles(values) for name, values in sorted(stats.stages_ms.items())},
        "peak_memory_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "model_ms_total": round(sum(invokes), 1), "loop_ms_total": round(loop_total, 1),
        "loop_efficiency": round(sum(invokes) / loop_total, 3) if loop_total else 0.0,
    }
    loop = report["loop"]
    print(f"analysis loop on scenario {report['scenario']} ({stats.frames} frames, {args.threads} threads): "
          f"{report['analysed_fps']} frames/s, loop p50 {loop['p50_ms']} ms p99 {loop['p99_ms']} ms")
    for name, f in report["stages"].items():
        print(f"  {name:<10} p50 {f['p50_ms']:7.2f} ms  p99 {f['p99_ms']:7.2f} ms  ({f['count']} runs)")
    print(f"  peak memory {report['peak_memory_mib']} MiB; loop efficiency {report['loop_efficiency']} "
          "(raw model time / loop time)")
    write_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
