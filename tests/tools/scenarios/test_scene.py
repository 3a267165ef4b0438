"""Scene layers: the empty backdrop has nobody in it and matches the backdrop around; props land where placed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_app.vision.models import load_models
from tests.need import need
from tools.scenarios import sources
from tools.scenarios.catalog import PROPS, BookProp, DeskObjectProp, PhoneProp
from tools.scenarios.scene import HEIGHT, WIDTH, SceneAssets, studio_plate, to_frame


def test_the_empty_backdrop_has_no_person_and_no_ghost(models_dir: Path) -> None:
    plate = studio_plate()
    assert plate.shape == (HEIGHT, WIDTH, 3)
    models = load_models(models_dir)
    image = plate.astype(np.uint8)
    assert not [d for d in models.detector.detect(image) if d.label == "person"]
    assert not models.face_detector.detect(image)
    behind_head = plate[100:300, 300:420].reshape(-1, 3).mean(axis=0)
    beside = plate[100:300, 560:620].reshape(-1, 3).mean(axis=0)
    assert np.abs(behind_head - beside).max() < 20, "where he always sat looks like the backdrop beside him"


def test_studio_frames_map_onto_the_frame() -> None:
    small = np.zeros((288, 360, 3), np.uint8)
    small[100:110, 90:100] = 255
    big = to_frame(small)
    assert big.shape == (HEIGHT, WIDTH, 3)
    ys, xs = np.nonzero(big[..., 0] > 128)
    assert xs.mean() == pytest.approx(95 * WIDTH / 360, abs=2) and ys.mean() == pytest.approx(105 * WIDTH / 360 - 16,
                                                                                              abs=2)


def test_props_are_placed_where_the_catalog_says() -> None:
    assets = SceneAssets()
    book = PROPS["book"]
    assert isinstance(book, BookProp)
    _, alpha = assets.prop(book)
    ys, xs = np.nonzero(alpha > 0.5)
    assert ys.max() == pytest.approx(book.at[1], abs=8), "the book stands on its lowest point"
    assert xs.mean() == pytest.approx(book.at[0], abs=10)
    cup = PROPS["espresso"]
    assert isinstance(cup, DeskObjectProp)
    rgb, alpha = assets.prop(cup)
    ys, xs = np.nonzero(alpha > 0.5)
    assert ys.max() == pytest.approx(cup.at[1], abs=3) and xs.mean() == pytest.approx(cup.at[0], abs=4)
    assert np.ptp(xs) == pytest.approx(cup.width, abs=4)
    saucer = rgb[alpha > 0.5].mean(axis=0)
    assert saucer[0] > saucer[2] + 40, "the cut-out is the red-brown cup and saucer, not the table around"
    phone = PROPS["phone"]
    assert isinstance(phone, PhoneProp)
    need(sources.phone_photos_available(), f"labelled phone photos not present at {sources.find_phone_dir()}")
    _, alpha = assets.prop(phone)
    ys, xs = np.nonzero(alpha > 0.5)
    assert xs.mean() == pytest.approx(phone.at[0], abs=6) and ys.mean() == pytest.approx(phone.at[1], abs=6)
    assert np.ptp(ys) == pytest.approx(phone.height * np.cos(np.radians(phone.angle)), rel=0.25)
