"""The `python -m edge_app` command line: detect and models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_app.__main__ import main
from tools.fixtures import photo


def test_detect_prints_one_json_object_per_image(models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bus, zidane = photo("bus.jpg"), photo("zidane.jpg")
    assert main(["detect", str(bus), str(zidane), "--json", "--models", str(models_dir)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [Path(x["image"]).name for x in lines] == ["bus.jpg", "zidane.jpg"]
    assert [len(x["people"]) for x in lines] == [4, 2]
    assert lines[0]["size"] == [810, 1080]
    assert all("pose" in p for p in lines[1]["people"])
    assert any(o["label"] == "bus" for o in lines[0]["objects"])
    assert set(lines[0]["timings_ms"]) >= {"detector", "pose", "face_detector"}


def test_detect_compares_faces_with_the_enrolled_photo(models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["detect", str(photo("obama2.jpg")), str(photo("biden.jpg")), "--json",
            "--enrolled", str(photo("obama.jpg")), "--models", str(models_dir)]
    assert main(args) == 0
    obama2, biden = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert [f["identity"]["match"] for f in obama2["faces"]] == [True]
    assert [f["identity"]["match"] for f in biden["faces"]] == [False]
    face = obama2["faces"][0]
    assert abs(face["yaw"]) < 30 and face["mouth_open"] is not None


def test_detect_text_output_and_float_models(models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detect", str(photo("zidane.jpg")), "--float", "--models", str(models_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("models: float, runtime ")
    assert "people: 2" in out


def test_unreadable_image_is_reported_and_the_rest_still_runs(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    assert main(["detect", str(bad), str(photo("zidane.jpg")), "--json", "--models", str(models_dir)]) == 1
    captured = capsys.readouterr()
    assert f"cannot read image {bad}" in captured.err
    assert len(captured.out.splitlines()) == 1


def test_missing_models_say_how_to_build_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detect", str(photo("zidane.jpg")), "--models", str(tmp_path)]) == 2
    assert "manifest.json does not exist: build the models with `make models`" in capsys.readouterr().err


def test_models_lists_every_model(models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--models", str(models_dir)]) == 0
    out = capsys.readouterr().out
    for name in ("detector", "pose", "face_detector", "face_landmarks", "face_embedding"):
        assert f"{name} (" in out
    assert "FAIL" not in out
