"""Edge figures: the analysis loop on a rendered scenario, in one run (`make bench`).

Prints and writes ``build/bench/edge.json``: analysed frames per second, loop and per-stage ms p50/p99,
peak memory (this process: models, loop and evidence ring), and loop efficiency = summed raw model
time (the interpreter's invoke; input tables and output decoding count as the loop's own cost) / loop
time. Each stage's total is split into its model time and the rest (pre- and post-processing, tracking,
statistics), and the loop time outside every stage is shown too, so the figures say where the non-model
time goes. The scenario
is played as fast as the loop analyses it, every frame, so the figure is the loop's capacity; a live
camera faster than that has frames dropped.
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


STAGE_MODELS = {"detector": ("detector",), "crops": ("crops",), "pose": ("pose",),
                "face": ("face_detector", "face_landmarks"), "identity": ("face_embedding",)}


MODEL_NAMES = ("detector", "pose", "face_detector", "face_landmarks", "face_embedding")


class ModelClock:
    """Bench-only instrumentation: every model's interpreter invoke adds its wall time (ms) to ``spent``, by
    model (the model proper: input lookup tables and output decoding count as the loop's own cost). A
    detector run counts as ``detector`` on the full frame under analysis (``frame``, when set) and as
    ``crops`` on anything else: a region of it, a turned crop."""

    def __init__(self, models: VisionModels) -> None:
        self.spent: dict[str, list[float]] = {}
        self.frame: np.ndarray | None = None
        self._crop = False  # a detector call on a crop is under way
        detect: Callable[..., Any] = models.detector.detect

        def detect_watched(frame: np.ndarray, region: Any = None, thresholds: Any = None, turns: int = 0) -> Any:
            self._crop = region is not None or bool(turns) or (self.frame is not None and frame is not self.frame)
            try:
                return detect(frame, region, thresholds, turns)
            finally:
                self._crop = False

        models.detector.detect = detect_watched  # type: ignore[method-assign]
        for name in MODEL_NAMES:
            model = getattr(models, name).model
            model._invoke = self._timed(name, model._invoke)

    def _timed(self, name: str, run: Callable[..., list[np.ndarray]]) -> Callable[..., list[np.ndarray]]:
        def timed() -> list[np.ndarray]:
            begun = time.perf_counter()
            try:
                return run()
            finally:
                key = "crops" if name == "detector" and self._crop else name
                self.spent.setdefault(key, []).append((time.perf_counter() - begun) * 1000)

        return timed

    def watch(self, runner: SessionRunner) -> None:
        """Note each frame the runner's analyser is given, to tell full-frame detector runs from crops."""
        analyse = runner.analyzer.analyse

        def noted(frame: np.ndarray, t: float) -> Any:
            self.frame = frame
            return analyse(frame, t)

        runner.analyzer.analyse = noted  # type: ignore[method-assign]


def breakdown(stages_ms: dict[str, list[float]], invokes: dict[str, list[float]],
              loop_total: float) -> dict[str, dict[str, float]]:
    """Per stage: runs, p50/p99, total ms, model ms, other (non-model) ms and share of the loop time;
    ``outside stages`` is the loop time no stage accounts for."""
    rows: dict[str, dict[str, float]] = {}
    for name, values in sorted(stages_ms.items()):
        total = sum(values)
        model = sum(sum(invokes.get(m, [])) for m in STAGE_MODELS.get(name, ()))
        rows[name] = {**percentiles(values), "total_ms": round(total, 1), "model_ms": round(model, 1),
                      "other_ms": round(total - model, 1), "share": round(total / loop_total, 3) if loop_total else 0.0}
    staged = sum(sum(values) for values in stages_ms.values())
    rows["outside stages"] = {"count": 0, "p50_ms": 0.0, "p99_ms": 0.0, "total_ms": round(loop_total - staged, 1),
                              "model_ms": 0.0, "other_ms": round(loop_total - staged, 1),
                              "share": round((loop_total - staged) / loop_total, 3) if loop_total else 0.0}
    return rows


def print_report(report: dict[str, Any]) -> None:
    loop = report["loop"]
    print(f"analysis loop on scenario {report['scenario']} ({report['frames']} frames, {report['threads']} threads): "
          f"{report['analysed_fps']} frames/s, loop p50 {loop['p50_ms']} ms p99 {loop['p99_ms']} ms")
    print(f"  {'stage':<15} {'runs':>5} {'p50 ms':>8} {'p99 ms':>8} {'total ms':>9} {'model ms':>9} "
          f"{'other ms':>9} {'of loop':>8}")
    for name, f in report["stages"].items():
        print(f"  {name:<15} {f['count']:>5} {f['p50_ms']:>8.2f} {f['p99_ms']:>8.2f} {f['total_ms']:>9.1f} "
              f"{f['model_ms']:>9.1f} {f['other_ms']:>9.1f} {f['share']:>8.1%}")
    print(f"  {'loop':<15} {report['frames']:>5} {loop['p50_ms']:>8.2f} {loop['p99_ms']:>8.2f} "
          f"{report['loop_ms_total']:>9.1f} {report['model_ms_total']:>9.1f} {report['other_ms_total']:>9.1f}")
    print(f"  loop efficiency {report['loop_efficiency']} (model time / loop time); {report['analysed_fps']} "
          f"frames/s; peak memory {report['peak_memory_mib']} MiB; evidence frames dropped "
          f"{report['evidence_dropped']}")
    parts = ", ".join(f"{name} {count if count is not None else 'not run'}"
                      for name, count in report["xnnpack_parts"].items())
    print(f"  graph parts run by XNNPACK (0: reference kernels, -1: unknown): {parts}")


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
    clock = ModelClock(models)
    runner = SessionRunner(config, lambda message: None, models, template)
    clock.watch(runner)
    stats = runner.run(threading.Event())
    invokes = clock.spent
    loop_total = sum(stats.loop_ms)
    model_total = sum(sum(values) for values in invokes.values())
    report = {
        "scenario": args.scenario.name, "threads": args.threads, "frames": stats.frames,
        "media_seconds": round(stats.media_seconds, 2), "wall_seconds": round(stats.wall_seconds, 2),
        "analysed_fps": round(stats.frames / stats.wall_seconds, 2) if stats.wall_seconds else 0.0,
        "loop": percentiles(stats.loop_ms),
        "stages": breakdown(stats.stages_ms, invokes, loop_total),
        "models": {name: {**percentiles(values), "total_ms": round(sum(values), 1)}
                   for name, values in sorted(invokes.items())},
        "peak_memory_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "model_ms_total": round(model_total, 1), "loop_ms_total": round(loop_total, 1),
        "other_ms_total": round(loop_total - model_total, 1),
        "loop_efficiency": round(model_total / loop_total, 3) if loop_total else 0.0,
        "evidence_dropped": stats.evidence_dropped,
        "xnnpack_parts": {name: getattr(models, name).model.delegate_parts for name in MODEL_NAMES},
    }
    print_report(report)
    write_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
