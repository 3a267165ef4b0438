"""Build the on-device models: float reference and full-integer int8, cached by content hash.

Run in the converter environment: ``python -m tools.model_build.build [--only NAME] [--out DIR]``.
Each model's cache key hashes its recipe, the shared converter code, the device's pre-processing and
the pinned source package, so an unchanged model is copied from the cache in well under a second.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import pkgutil
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from tools.fetch import cache_dir
from tools.model_build.recipe import Recipe
from tools.model_build.sources import HUMAN_MODELS, MODEL_LICENCES, model_json

ROOT = Path(__file__).resolve().parents[2]
# What every model is made with: converter code, fetchers, pinned requirements (not the gates, which
# check the files after they are built and are not part of them).
SHARED_INPUTS = sorted(
    str(p.relative_to(ROOT))
    for p in [*(ROOT / "tools" / "model_build").glob("*.py"), *(ROOT / "tools" / "model_build").glob("*.txt"),
              ROOT / "tools" / "fetch.py", ROOT / "tools" / "fixtures.py"]
    if p.name != "gates.py"
)


def recipes() -> list[Recipe]:
    import tools.model_build.recipes as package

    found = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        if hasattr(module, "RECIPE"):
            found.append(module.RECIPE)
    return found


def cache_key(recipe: Recipe) -> str:
    """Hash of what a model is made from: the source package, the converter, every recipe (recipes share
    helpers, so one key over all of them is the safe choice) and the device code they import."""
    digest = hashlib.sha256(f"{HUMAN_MODELS.sha256}:{recipe.name}".encode())
    device = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "edge_app" / "vision").glob("*.py"))
    recipe_files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tools" / "model_build" / "recipes").glob("*.py"))
    for rel in [*SHARED_INPUTS, *recipe_files, *device]:
        digest.update(rel.encode())
        digest.update((ROOT / rel).read_bytes())
    return digest.hexdigest()[:16]


def load_photos() -> list[np.ndarray]:
    import cv2

    from tools.fixtures import model_photos

    photos = []
    for _name, path in sorted(model_photos().items()):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise RuntimeError(f"cannot read calibration photo {path}")
        photos.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    return photos


def build_one(recipe: Recipe, photos: list[np.ndarray] | None) -> tuple[Path, bool]:
    """Return the cache folder holding the model's files, building it if needed."""
    from tools.model_build.convert import to_tflite
    from tools.model_build.tfjs_graph import load_graph_def

    folder = cache_dir() / "models" / f"{recipe.name}-{cache_key(recipe)}"
    if (folder / "build.json").is_file():
        return folder, False
    started = time.monotonic()
    graph_def = load_graph_def(model_json(recipe.source))
    if recipe.edit is not None:
        graph_def = recipe.edit(graph_def)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for quant in ("float", "int8"):
        data = to_tflite(recipe, graph_def, quant, photos or load_photos())
        (tmp / f"{recipe.name}.{quant}.tflite").write_bytes(data)
    info = {
        "name": recipe.name,
        "kind": recipe.kind,
        "source": {"package": HUMAN_MODELS.label, "sha256": HUMAN_MODELS.sha256, "model": recipe.source,
                   "licence": MODEL_LICENCES.get(recipe.source, "see package credits")},
        "input": {"name": recipe.input_name, "shape": list(recipe.input_shape)},
        "float_outputs": list(recipe.float_outputs),
        "int8_outputs": list(recipe.int8_outputs),
        "float_nodes": list(recipe.float_nodes),
        "calibration_samples": recipe.samples,
        "notes": recipe.notes,
        "build_seconds": round(time.monotonic() - started, 1),
    }
    (tmp / "build.json").write_text(json.dumps(info, indent=2))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return folder, True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", action="append", help="build only this model (repeatable)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "models")
    args = parser.parse_args(argv)
    selected = [r for r in recipes() if not args.only or r.name in args.only]
    if args.only and len(selected) != len(args.only):
        parser.error(f"unknown model in {args.only}; known: {[r.name for r in recipes()]}")
    args.out.mkdir(parents=True, exist_ok=True)
    photos: list[np.ndarray] | None = None
    for recipe in selected:
        if photos is None and not (cache_dir() / "models" / f"{recipe.name}-{cache_key(recipe)}").is_dir():
            photos = load_photos()
        folder, built = build_one(recipe, photos)
        for path in folder.iterdir():
            target = args.out / (path.name if path.suffix == ".tflite" else f"{recipe.name}.build.json")
            shutil.copyfile(path, target.with_suffix(target.suffix + ".tmp"))
            os.replace(target.with_suffix(target.suffix + ".tmp"), target)
        print(f"{recipe.name}: {'built' if built else 'cached'} ({folder.name})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
