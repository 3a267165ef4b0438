"""The pins the unit image installs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.image.pins import image_pins


def test_the_image_installs_the_pins_and_the_pi_and_audio_extras() -> None:
    pins = image_pins()
    names = [line.split("==")[0] for line in pins]
    assert "ai-edge-litert" in names and "picamera2" in names and "pyaudio" in names
    assert "pocketsphinx" not in names and "sqlalchemy" not in names  # speech and bridge stay off the image
    assert all("==" in line for line in pins)


def test_the_page_extra_is_installed_when_pyproject_has_one(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    text = '[project]\ndependencies = ["numpy==2.4.6"]\n[project.optional-dependencies]\npi = ["a==1"]\naudio = []\n'
    pyproject.write_text(text)
    assert image_pins(pyproject) == ["numpy==2.4.6", "a==1"]
    pyproject.write_text(text + 'page = ["flask==3.1.3"]\n')
    assert image_pins(pyproject)[-1] == "flask==3.1.3"


def test_a_loose_pin_is_refused(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\ndependencies = ["numpy>=2"]\n'
                         '[project.optional-dependencies]\npi = []\naudio = []\n')
    with pytest.raises(ValueError, match="numpy>=2"):
        image_pins(pyproject)
