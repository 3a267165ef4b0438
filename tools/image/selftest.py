"""Self-test of a unit image: the pinned packages import, the int8 models load, detection runs on photos.

Runs inside the arm64 root filesystem under emulation (``make image-test``) and, unchanged, on the x86
host for the reference. Writes one JSON report; :mod:`tools.image.compare` compares two of them.

    python -m tools.image.selftest --requirements REQS --models DIR --photos DIR --out FILE
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.metadata as metadata
import json
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

# Pinned distributions that only import on Raspberry Pi OS: the reason is recorded, the import is not failed.
NEEDS_PI_OS = {"picamera2": "libcamera"}
# Detections are recorded from this fraction of the detector's own threshold, so the comparison can tell a
# detection that moved across the threshold from one that vanished.
FLOOR_FRACTION = 0.5
_PIN = re.compile(r"^\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*==\s*([^\s;#]+)")


def read_pins(path: Path) -> dict[str, str]:
    """``name==version`` lines of a requirements file (comments and other lines skipped)."""
    pins = {}
    for line in path.read_text().splitlines():
        match = _PIN.match(line)
        if match:
            pins[match.group(1)] = match.group(2)
    return pins


def _top_modules(dist: str) -> list[str]:
    """The importable top-level modules a distribution provides."""
    wanted = metadata.distribution(dist).metadata["Name"].lower().replace("_", "-")
    found = [
        module
        for module, owners in metadata.packages_distributions().items()
        if any(o.lower().replace("_", "-") == wanted for o in owners) and not module.startswith("_")
    ]
    return sorted(found) or [dist.replace("-", "_").lower()]


def check_imports(pins: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Installed version and import result of every pinned distribution."""
    report: dict[str, dict[str, Any]] = {}
    for dist, pinned in pins.items():
        entry: dict[str, Any] = {"pinned": pinned}
        try:
            entry["installed"] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            entry.update(installed=None, ok=False, error="not installed")
            report[dist] = entry
            continue
        modules = _top_modules(dist)
        entry["modules"] = modules
        errors = []
        for module in modules:
            try:
                importlib.import_module(module)
            except Exception as exc:  # any import-time failure is the finding
                errors.append(f"{module}: {type(exc).__name__}: {exc}")
        needs = NEEDS_PI_OS.get(dist.lower())
        if errors and needs and all(needs in e for e in errors):
            entry["needs_pi_os"] = f"imports only with the {needs} bindings of Raspberry Pi OS"
            errors = []
        entry["ok"] = entry["installed"] == pinned and not errors
        if errors:
            entry["error"] = "; ".join(errors)
        report[dist] = entry
    return report


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_models(models_dir: Path, photos: list[Path], threads: int) -> dict[str, Any]:
    """Load every int8 model (checking the manifest's hashes) and run the detectors on each photo."""
    from edge_app.vision.face import decode_faces
    from edge_app.vision.models import load_models, read_manifest
    from edge_app.vision.preprocess import read_rgb

    manifest = read_manifest(models_dir)
    files = {}
    for name, entry in manifest["models"].items():
        info = entry["files"]["int8"]
        files[name] = {"file": info["file"], "sha256_ok": _sha256(models_dir / info["file"]) == info["sha256"]}
    started = time.perf_counter()
    models = load_models(models_dir, "int8", threads)
    load_ms = (time.perf_counter() - started) * 1000
    print(f"selftest ready: int8 models loaded in {load_ms:.0f} ms", file=sys.stderr, flush=True)
    detector = models.detector
    floor = detector.thresholds * FLOOR_FRACTION
    results: dict[str, Any] = {}
    for path in photos:
        image = read_rgb(str(path))
        started = time.perf_counter()
        detections = detector.detect(image, thresholds=floor)
        face_detector = models.face_detector
        logits, regressors, box = face_detector.raw(image)
        faces = decode_faces(logits, regressors, face_detector.anchors, box,
                             face_detector.score_threshold * FLOOR_FRACTION, face_detector.iou_threshold)
        results[path.name] = {
            "ms": round((time.perf_counter() - started) * 1000, 1),
            "detections": [
                {"label": d.label, "score": round(float(d.score), 4), "box": [round(float(v), 1) for v in d.box],
                 "threshold": round(detector.threshold(d.label), 4)}
                for d in detections
            ],
            "faces": [{"score": round(float(f.score), 4), "box": [round(float(v), 1) for v in f.box],
                       "threshold": face_detector.score_threshold} for f in faces],
        }
    return {"runtime": models.runtime, "quant": models.quant, "files": files, "load_ms": round(load_ms, 1),
            "photos": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requirements", type=Path, required=True, help="the pins (name==version lines)")
    parser.add_argument("--models", type=Path, required=True, help="folder with manifest.json")
    parser.add_argument("--photos", type=Path, required=True, help="folder of photos to run detection on")
    parser.add_argument("--out", type=Path, required=True, help="JSON report to write")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reference", action="store_true",
                        help="host reference run: record the imports, fail only on the models")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    imports = check_imports(read_pins(args.requirements))
    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    report = {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "imports": imports,
        "imports_s": round(time.perf_counter() - started, 2),
        **run_models(args.models, photos, args.threads),
        "total_s": round(time.perf_counter() - started, 2),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    bad = [] if args.reference else [name for name, entry in imports.items() if not entry["ok"]]
    bad += [f"{name} (sha256)" for name, entry in report["files"].items() if not entry["sha256_ok"]]
    print(f"selftest {report['machine']}: {len(imports)} pins, {len(report['files'])} int8 models "
          f"({report['runtime']}, loaded in {report['load_ms']:.0f} ms), {len(photos)} photos in "
          f"{report['total_s']:.1f} s" + (f"; FAILED: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
