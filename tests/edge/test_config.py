"""The root config: TOML, environment overrides, relative paths, errors naming file and field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge_app.config import ConfigError, load

ROOT = Path(__file__).resolve().parents[2]
GOOD = """
device_id = "unit-01"
[camera]
type = "scenario"
path = "scenes/normal"
[audio]
type = "wav"
path = "scenes/normal/audio.wav"
[rules]
preset = "strict"
phone = { min_score = 0.25 }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edge.toml"
    path.write_text(text)
    return path


def test_a_good_config_loads_with_paths_relative_to_its_file(tmp_path: Path) -> None:
    config = load(write(tmp_path, GOOD), environ={})
    assert config.device_id == "unit-01"
    assert config.camera.type == "scenario" and config.camera.path == tmp_path / "scenes/normal"
    assert config.audio is not None and config.audio.path == tmp_path / "scenes/normal/audio.wav"
    assert config.rules.preset == "strict" and config.rules.phone.min_score == 0.25
    assert config.analysis.detector_hz == 5.0


def test_environment_overrides_fields_at_any_depth(tmp_path: Path) -> None:
    environ = {"INVIGIL_DEVICE_ID": "unit-99", "INVIGIL_RULES__PRESET": "relaxed",
               "INVIGIL_ANALYSIS__DETECTOR_HZ": "3", "INVIGIL_CACHE": "/somewhere", "INVIGIL_REQUIRE_RUNTIMES": "x"}
    config = load(write(tmp_path, GOOD), environ=environ)
    assert config.device_id == "unit-99" and config.rules.preset == "relaxed"
    assert config.analysis.detector_hz == 3.0


def test_overrides_are_read_by_the_field_type_so_numeric_ids_and_names_stay_text(tmp_path: Path) -> None:
    (tmp_path / "bridge.pub").write_text("a key file")
    text = GOOD + '[link]\nbridge_key = "bridge.pub"\n[link.broker]\nhost = "broker"\n'
    environ = {"INVIGIL_DEVICE_ID": "1234", "INVIGIL_LINK__BROKER__USERNAME": "1234",
               "INVIGIL_LINK__BROKER__PORT": "8883", "INVIGIL_LINK__BROKER__TLS": "true", "INVIGIL_AUDIO": "null",
               "INVIGIL_RULES__TALKING": '{"enabled": false}', "INVIGIL_DATA_DIR": "state"}
    config = load(write(tmp_path, text), environ=environ)
    assert config.device_id == "1234" and config.link is not None
    assert config.link.broker.username == "1234" and config.link.broker.port == 8883 and config.link.broker.tls
    assert config.audio is None and not config.rules.talking.enabled
    assert config.data_dir == tmp_path / "state"  # relative to the config's folder, as in the file


@pytest.mark.parametrize(("environ", "expected"), [
    ({"INVIGIL_RULES": "preset=strict"}, "INVIGIL_RULES: expected JSON"),
    ({"INVIGIL_DEVICE_ID__X": "1"}, "INVIGIL_DEVICE_ID__X: device_id is not a section"),
    ({"INVIGIL_ANALYSIS__DETECTOR_HZ": "fast"}, "analysis.detector_hz: Input should be a valid number"),
])
def test_a_bad_override_names_the_file_and_the_variable(tmp_path: Path, environ: dict[str, str],
                                                          expected: str) -> None:
    path = write(tmp_path, GOOD)
    with pytest.raises(ConfigError) as info:
        load(path, environ=environ)
    assert str(info.value).startswith(str(path)) and expected in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD.replace('"unit-01"', '"Unit 01"'), "device_id: String should match pattern"),
        (GOOD.replace('type = "scenario"', 'type = "webcam"'), "camera: Input tag 'webcam'"),
        (GOOD + "\n[analysis]\ndetector_hz = 0\n", "analysis.detector_hz: Input should be greater than 0"),
        (GOOD.replace("min_score = 0.25", "min_score = 2"), "rules.phone.min_score: Input should be less than 1"),
        (GOOD + "\nspeed = 3\n", "speed: Extra inputs are not permitted"),
        (GOOD.replace('device_id = "unit-01"', ""), "device_id: Field required"),
        ("device_id = ", "not valid TOML"),
    ],
)
def test_errors_name_the_file_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load(path, environ={})
    assert str(path) in str(info.value) and expected in str(info.value)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config"):
        load(tmp_path / "nope.toml", environ={})


def test_validate_config_command(tmp_path: Path) -> None:
    good = write(tmp_path, GOOD)
    done = subprocess.run([sys.executable, "-m", "edge_app", "--validate-config", str(good)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "ok (device unit-01" in done.stdout
    bad = write(tmp_path, GOOD.replace("min_score = 0.25", "min_score = -1"))
    done = subprocess.run([sys.executable, "-m", "edge_app", "--validate-config", str(bad)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "rules.phone.min_score: Input should be greater than 0" in done.stderr


def test_the_device_config_shipped_in_firmware_is_valid() -> None:
    config = load(ROOT / "firmware" / "config" / "edge.toml", environ={})
    assert config.camera.type == "picamera2" and config.rules.preset == "standard"
    assert config.audio is not None and config.audio.type == "pyaudio"
