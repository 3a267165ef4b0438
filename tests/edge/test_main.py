"""The `python -m edge_app` command line: detect, models, pair and key."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_app.__main__ import main
from edge_app.pairing import PAIR_FILE, take_pair_code
from edge_app.protocol.keys import load_or_create_key, public_pem
from tests.need import need
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


def test_detect_gives_the_phone_rules_verdict_on_a_photo_without_a_phone(
        models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detect", str(photo("zidane.jpg")), "--json", "--models", str(models_dir)]) == 0
    phone = json.loads(capsys.readouterr().out)["phone"]
    assert phone["seen"] is False and phone["verdict"].startswith("no phone")
    assert phone["crop_regions"], "the hand/desk pass looked around the largest person's wrists"
    assert phone["min_score"] == 0.35


def test_detect_finds_the_phone_held_in_a_rendered_scene(models_dir: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    video = Path(__file__).resolve().parents[2] / "build" / "scenarios" / "phone_used" / "video.avi"
    need(video.is_file(), f"{video} is not rendered (its phone needs the labelled phone photos)")
    import cv2

    capture = cv2.VideoCapture(str(video))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 215)  # 21.5 s: the phone is held up from 15 s to 28 s
    ok, frame = capture.read()
    capture.release()
    assert ok
    cv2.imwrite(str(tmp_path / "frame.png"), frame)
    assert main(["detect", str(tmp_path / "frame.png"), "--models", str(models_dir)]) == 0
    out = capsys.readouterr().out
    assert "phone rule: phone:" in out, out


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


def unit_config(folder: Path, link: str = "") -> Path:
    """A unit's TOML config in ``folder`` whose data_dir is ``folder/data`` (relative, as on a unit)."""
    config = folder / "edge.toml"
    config.write_text(f'device_id = "unit-7"\ndata_dir = "data"\n[camera]\ntype = "scenario"\npath = "scn"\n{link}')
    return config


def test_pair_leaves_the_typed_code_for_the_running_unit(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    config = unit_config(tmp_path)
    assert main(["pair", "--config", str(config), "abcd-efgh"]) == 0
    assert "ABCDEFGH" in capsys.readouterr().out
    assert (tmp_path / "data" / PAIR_FILE).read_bytes() == b"ABCDEFGH\n"  # data_dir created on the way
    assert take_pair_code(tmp_path / "data") == "ABCDEFGH"


@pytest.mark.parametrize("code", ["ABCD-EFG0", "ABCDEFG", "ABCDEFGHJ", "ABCD EFGI"])
def test_pair_rejects_a_bad_code(tmp_path: Path, capsys: pytest.CaptureFixture[str], code: str) -> None:
    config = unit_config(tmp_path)
    assert main(["pair", "--config", str(config), code]) == 2
    assert "bad_code" in capsys.readouterr().err
    assert not (tmp_path / "data" / PAIR_FILE).exists()


def test_pair_with_an_unusable_config_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "edge.toml"
    config.write_text('device_id = "Unit 7"\n')
    assert main(["pair", "--config", str(config), "ABCDEFGH"]) == 2
    err = capsys.readouterr().err
    assert "device_id" in err and "camera" in err


def test_key_prints_the_public_key_and_creates_it_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = unit_config(tmp_path)
    assert main(["key", "--config", str(config)]) == 0
    first = capsys.readouterr().out
    key_file = tmp_path / "data" / "device.key"
    assert first.startswith("-----BEGIN PUBLIC KEY-----\n") and first.endswith("-----END PUBLIC KEY-----\n")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    created = key_file.read_bytes()
    assert main(["key", "--config", str(config)]) == 0
    assert capsys.readouterr().out == first and key_file.read_bytes() == created
    assert public_pem(load_or_create_key(key_file)) == first


def test_key_uses_the_link_sections_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """link.bridge_key is relative to the config's folder, link.key_file to data_dir."""
    bridge = Ed25519PrivateKey.generate()
    (tmp_path / "bridge.pub").write_text(public_pem(bridge))
    config = unit_config(tmp_path, '[link]\nbridge_key = "bridge.pub"\nkey_file = "keys/unit.key"\n'
                                   '[link.broker]\nhost = "127.0.0.1"\n')
    assert main(["key", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert out == public_pem(load_or_create_key(tmp_path / "data" / "keys" / "unit.key"))
    assert not (tmp_path / "data" / "device.key").exists()


def test_key_refuses_a_key_file_that_is_not_a_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = unit_config(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "device.key").write_text("not a key\n")
    assert main(["key", "--config", str(config)]) == 2
    assert "cannot be read as a PEM private key" in capsys.readouterr().err
    assert (tmp_path / "data" / "device.key").read_text() == "not a key\n"  # never replaced
