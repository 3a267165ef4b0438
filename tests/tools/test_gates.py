"""The model manifest and the int8 parity gates of `make models`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tools.fetch import sha256_file
from tools.model_build import gates
from tools.model_build.parity import PhotoBoxes, box_parity
from tools.model_build.sources import HUMAN_MODELS


def test_manifest_describes_every_model(models_dir: Path) -> None:
    manifest = json.loads((models_dir / "manifest.json").read_text())
    assert list(manifest["models"]) == gates.MODEL_ORDER
    for name, entry in manifest["models"].items():
        for quant in ("float", "int8"):
            described = entry["files"][quant]
            assert sha256_file(models_dir / described["file"]) == described["sha256"], (name, quant)
        assert entry["source"]["package"] == HUMAN_MODELS.label
        assert entry["source"]["sha256"] == HUMAN_MODELS.sha256
        assert entry["source"]["licence"]
        assert entry["graph"]["input"]["shape"][0] == 1
        for key in ("input", "outputs"):  # input spec and output decoding
            assert entry.get(key), f"{name}: manifest has no {key!r}"
        assert "labels" in entry
        assert entry["parity"]["passed"], entry["parity"]["failures"]
        assert entry["parity"]["integer"]["io"] == ["int8"], name
        assert entry["parity"]["integer"]["float_tensors"] == 0 or entry["quantization"]["float_nodes"], name


def test_gates_fail_loudly_when_the_int8_file_is_not_integer(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "models"
    shutil.copytree(models_dir, copy)
    shutil.copyfile(copy / "detector.float.tflite", copy / "detector.int8.tflite")
    assert gates.main(["--models", str(copy)]) == 1
    err = capsys.readouterr().err
    assert "detector: detector.int8.tflite is not full-integer" in err
    assert "int8 parity FAILED for detector" in err
    assert not (copy / "manifest.json").exists()
    assert json.loads((copy / "manifest.failed.json").read_text())["models"]["detector"]["parity"]["passed"] is False


def test_gates_refuse_an_incomplete_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gates.main(["--models", str(tmp_path)]) == 2
    assert "models not built: detector, pose" in capsys.readouterr().err


def _boxes(*xs: float) -> np.ndarray:
    return np.array([[x, 0.0, x + 10.0, 10.0] for x in xs], dtype=np.float32).reshape(-1, 4)


@pytest.mark.parametrize(
    ("float_found", "int8_found", "passes", "borderline"),
    [
        ([(0, 0.8)], [(0, 0.79)], True, []),  # same box, close scores
        ([(0, 0.8)], [(0, 0.8), (50, 0.37)], True, [0.37]),  # an extra int8 box at the threshold's edge
        ([(0, 0.8), (50, 0.38)], [(0, 0.8)], True, [0.38]),  # a float box lost at the edge
        ([(0, 0.8)], [(0, 0.8), (50, 0.45)], False, []),  # an extra box clear of the edge: a real difference
        ([(0, 0.8), (50, 0.6)], [(0, 0.8)], False, []),  # a confident float box lost
        ([(0, 0.8)], [(6, 0.8)], False, []),  # the box moved: IoU 4/16 < 0.7
    ],
)
def test_box_parity_forgives_only_boxes_at_the_threshold(
    float_found: list[tuple[float, float]], int8_found: list[tuple[float, float]], passes: bool,
    borderline: list[float],
) -> None:
    photo = PhotoBoxes(True, _boxes(*(x for x, _ in float_found)), [s for _, s in float_found],
                       _boxes(*(x for x, _ in int8_found)), [s for _, s in int8_found])
    result = box_parity({"p.jpg": photo}, "people", "person", 0.7, {"threshold": 0.35})
    assert result.passed is passes, result.failures
    assert result.figures["photos"]["p.jpg"]["borderline"] == borderline
