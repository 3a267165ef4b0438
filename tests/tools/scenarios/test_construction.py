"""Renders are validated by their construction (layer geometry, the mixed sound's levels), not by the models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tools.scenarios import audio, construction
from tools.scenarios.catalog import EXTRAS, PROPS, BookProp, PastedPerson
from tools.scenarios.compose import View
from tools.scenarios.scene import SceneAssets
from tools.scenarios.spec import ScenarioSpec, load_spec

HEAD = """
name = "case"
description = "test"
view = "close"
set = "check"
duration = 30.0
enrolled = "franck_02045.jpg"
calibration_seconds = 10.0

[[segments]]
start = 0.0
end = 12.0
candidate = "franck_seated"

[[segments]]
start = 12.0
end = 22.0
candidate = "franck_seated"
{extra}

[[segments]]
start = 22.0
end = 30.0
candidate = "franck_seated"

[[alerts]]
kind = "{kind}"
start = 12.0
end = 22.0
allowed_delay = 4.0
"""


@pytest.fixture(scope="module")
def assets() -> SceneAssets:
    return SceneAssets()


def spec_with(tmp_path: Path, extra: str, kind: str) -> ScenarioSpec:
    path = tmp_path / "case.toml"
    path.write_text(HEAD.format(extra=extra, kind=kind))
    return load_spec(path)


def test_a_seated_candidate_and_the_desk_are_measured(assets: SceneAssets) -> None:
    figures = construction.measure_view(assets, View(candidate="franck_seated"), 0.0)
    assert list(figures) == ["candidate", "desk"]
    assert figures["desk"]["box"] == [0, 440, 640, 480] and figures["desk"]["visible"] == 1.0
    assert 0.5 < figures["candidate"]["visible"] < 1.0, "the desk hides his lower body"


def test_the_committed_book_shows_whole_and_a_book_off_the_edge_is_refused(
        assets: SceneAssets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = spec_with(tmp_path, 'props = ["book"]', "material")
    figures, problems = construction.check_geometry(spec, assets)
    assert problems == [] and figures[1]["prop:book"]["visible"] == 1.0
    book = PROPS["book"]
    assert isinstance(book, BookProp)
    monkeypatch.setitem(PROPS, "book", BookProp(book.photo, book.height, (650.0, 455.0), book.angle))
    _, problems = construction.check_geometry(spec, SceneAssets())
    assert problems and all(p.startswith("segments[1] prop:book:") for p in problems), problems


def test_an_extra_person_hidden_behind_the_candidate_is_refused(
        assets: SceneAssets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = spec_with(tmp_path, 'extras = ["obama_standing"]', "extra_person")
    _, problems = construction.check_geometry(spec, assets)
    assert problems == []
    obama = EXTRAS["obama_standing"]
    hidden = PastedPerson(obama.person, obama.photo, obama.box, obama.face, at=(320.0, 200.0),
                          face_side=obama.face_side)
    monkeypatch.setitem(EXTRAS, "obama_standing", hidden)
    _, problems = construction.check_geometry(spec, SceneAssets())
    assert any("extra:obama_standing: face" in p for p in problems), problems


def test_sound_levels_are_measured_on_the_mix(tmp_path: Path) -> None:
    path = tmp_path / "case.toml"
    path.write_text(HEAD.format(extra="", kind="loud_audio").replace(
        "[[alerts]]", '[[sounds]]\ntype = "bangs"\nstart = 12.0\nend = 22.0\n\n[[alerts]]'))
    spec = load_spec(path)
    rate = audio.RATE
    samples = np.zeros(round(spec.duration * rate), np.float32)
    samples[12 * rate : 22 * rate] = 0.5 * np.sin(np.arange(10 * rate) * 0.05)  # about -9 dBFS
    figures, problems = construction.check_audio(spec, samples)
    assert problems == [] and figures[0]["rms_dbfs"] == pytest.approx(-9.0, abs=0.2)
    samples[12 * rate : 22 * rate] *= 0.1  # about -29 dBFS: not loud
    _, problems = construction.check_audio(spec, samples)
    assert problems == ["sounds[0] bangs: RMS -29.0 dBFS, loud needs >= -10.0 dBFS"]
