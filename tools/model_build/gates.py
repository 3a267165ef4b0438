"""Parity gates and the model manifest (project environment, the device's own inference code).

``python -m tools.model_build.gates`` checks every built model's int8 file against its float
reference on real photos, writes ``build/models/manifest.json`` and exits non-zero, naming the model
and the failed figure, when a gate fails. Results are cached by the hash of both model files and the
checking code, so an unchanged build is re-verified in under a second.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edge_app.atomic import write_bytes_atomic
from tools.fetch import cache_dir, sha256_file

ROOT = Path(__file__).resolve().parents[2]
MODEL_ORDER = ["detector", "pose", "face_detector", "face_landmarks", "face_embedding"]


def _photos() -> dict[str, Any]:
    from edge_app.vision.preprocess import read_rgb
    from tools.fixtures import model_photos

    return {name: read_rgb(str(path)) for name, path in model_photos().items()}


def _gate_key(name: str, float_path: Path, int8_path: Path) -> str:
    from edge_app.vision.runtime import available_runtimes

    digest = hashlib.sha256()
    for part in (sha256_file(float_path), sha256_file(int8_path), ",".join(available_runtimes())):
        digest.update(part.encode())
    parity = ROOT / "tools" / "model_build" / "parity"
    checking_code = [parity / "__init__.py", parity / f"{name}.py", Path(__file__)]  # the shared gates too
    for path in [*sorted((ROOT / "edge_app" / "vision").glob("*.py")), *checking_code]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:24]


def integer_report(path: Path) -> dict[str, Any]:
    """How integer the model really is: its I/O types and how many tensors are still float."""
    from edge_app.vision.runtime import TFLiteModel

    model = TFLiteModel(path, threads=1)
    details = model._interpreter.get_tensor_details()
    floats = [d["name"] for d in details if d["dtype"] in (np.float32, np.float16)]
    return {
        "io": sorted({str(s.dtype) for s in model.inputs + model.outputs}),
        "tensors": len(details),
        "float_tensors": len(floats),
    }


def _describe_int8(integer: dict[str, Any] | None, build: dict[str, Any]) -> str:
    if not build["float_nodes"]:
        return "full-integer int8 (int8 input/output, per-channel weights)"
    kept = f"{integer['float_tensors']} of {integer['tensors']} tensors" if integer else "a few layers"
    return f"int8 input/output, per-channel int8 weights; {kept} kept float (sensitive layers, see graph.notes)"


def check_model(name: str, models: Path, photos: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Return (manifest entry, photos loaded so far) for one model, running its gate unless cached."""
    build = json.loads((models / f"{name}.build.json").read_text())
    float_path, int8_path = models / f"{name}.float.tflite", models / f"{name}.int8.tflite"
    parity = importlib.import_module(f"tools.model_build.parity.{name}")
    cached = cache_dir() / "gates" / f"{name}-{_gate_key(name, float_path, int8_path)}.json"
    if cached.is_file():
        result = json.loads(cached.read_text())
    else:
        if photos is None:
            photos = _photos()
        outcome = parity.check(float_path, int8_path, photos)
        result = {"passed": outcome.passed, "figures": outcome.figures, "failures": outcome.failures}
        integer = integer_report(int8_path)
        result["integer"] = integer
        if integer["io"] != ["int8"] or (integer["float_tensors"] and not build["float_nodes"]):
            result["passed"] = False
            result["failures"].append(
                f"{int8_path.name} is not full-integer: I/O {integer['io']}, "
                f"{integer['float_tensors']} of {integer['tensors']} tensors float"
            )
        write_bytes_atomic(cached, json.dumps(result, indent=2).encode())
    entry = {
        "kind": build["kind"],
        "files": {
            quant: {"file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size}
            for quant, path in (("float", float_path), ("int8", int8_path))
        },
        "source": build["source"],
        "quantization": {
            "int8": _describe_int8(result.get("integer"), build),
            "float": "float32 reference (same graph cut, decoding in numpy)",
            "float_nodes": build["float_nodes"],
            "calibration_samples": build["calibration_samples"],
        },
        "graph": {"input": build["input"], "outputs": build["int8_outputs"], "notes": build["notes"]},
        **parity.MANIFEST,
        "parity": result,
    }
    return entry, photos


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=Path, default=ROOT / "build" / "models")
    args = parser.parse_args(argv)
    names = [n for n in MODEL_ORDER if (args.models / f"{n}.build.json").is_file()]
    missing = [n for n in MODEL_ORDER if n not in names]
    if missing:
        print(f"gates: models not built: {', '.join(missing)} (run `make models`)", file=sys.stderr)
        return 2
    manifest: dict[str, Any] = {"schema": 1, "models": {}}
    photos = None
    failed = []
    for name in names:
        entry, photos = check_model(name, args.models, photos)
        manifest["models"][name] = entry
        verdict = "PASS" if entry["parity"]["passed"] else "FAIL"
        figures = ", ".join(f"{k}={v}" for k, v in entry["parity"]["figures"].items() if not isinstance(v, dict | list))
        print(f"{name:15s} int8 parity {verdict}: {figures}")
        for failure in entry["parity"]["failures"]:
            print(f"    {name}: {failure}", file=sys.stderr)
        if not entry["parity"]["passed"]:
            failed.append(name)
    target = args.models / "manifest.json"
    if failed:
        target.unlink(missing_ok=True)
        (args.models / "manifest.failed.json").write_text(json.dumps(manifest, indent=2))
        print(f"gates: int8 parity FAILED for {', '.join(failed)}; see {args.models}/manifest.failed.json",
              file=sys.stderr)
        return 1
    write_bytes_atomic(target, json.dumps(manifest, indent=2).encode())
    print(f"gates: all {len(names)} models pass; wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
