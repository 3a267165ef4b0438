"""Cut-outs keep real pixels and find the right ones: keyed studio frame, GrabCut portrait, phone, book, cup."""

from __future__ import annotations

import numpy as np
import pytest

from tests.need import need
from tools.scenarios import cutout, sources
from tools.scenarios.scene import KEY_SEED, studio_frames


def full_alpha(cut: cutout.Cutout, shape: tuple[int, ...]) -> np.ndarray:
    alpha = np.zeros(shape[:2], np.float32)
    x, y = cut.origin
    alpha[y : y + cut.alpha.shape[0], x : x + cut.alpha.shape[1]] = cut.alpha
    return alpha


def test_chroma_key_keeps_the_man_and_drops_the_backdrop() -> None:
    frame = studio_frames()[2508]
    cut = cutout.chroma_key(frame, KEY_SEED)
    alpha = full_alpha(cut, frame.shape)
    assert alpha[KEY_SEED[1], KEY_SEED[0]] == pytest.approx(1.0)
    assert alpha[100, 210] == pytest.approx(1.0), "his face"
    assert alpha[20, 340] == 0 and alpha[150, 330] == 0, "backdrop"
    assert alpha[130, 8] == 0, "the dark stand at the left edge is not part of him"
    edge = (cut.alpha > 0.05) & (cut.alpha < 0.95)
    rgb = cut.rgb.astype(int)
    assert np.all(rgb[edge][:, 2] <= (rgb[edge][:, 0] + rgb[edge][:, 1]) // 2 + 1), "blue spill removed at the edge"
    x, y = cut.origin
    inside = cut.alpha > 0.99
    assert np.array_equal(cut.rgb[inside], frame[y : y + cut.rgb.shape[0], x : x + cut.rgb.shape[1]][inside]), \
        "pixels inside the mask are the photo's own"


def test_grabcut_cuts_a_portrait_out_of_its_room() -> None:
    photo = sources.photo_rgb("obama.jpg")
    cut = cutout.grabcut_person(photo, (46, 17, 844, 1123), (366, 148, 629, 411))
    alpha = full_alpha(cut, photo.shape)
    assert alpha[280, 497] == pytest.approx(1.0), "face"
    assert alpha[700, 300] == pytest.approx(1.0), "suit"
    assert alpha[150, 150] == 0 and alpha[150, 800] == 0, "flags and curtains beside the head"


def test_dark_object_finds_the_labelled_phone() -> None:
    need(sources.phone_photos_available(), f"labelled phone photos not present at {sources.find_phone_dir()}")
    image, centre = sources.phone_photo("11.jpg")
    cut = cutout.dark_object(image, centre, 30)
    ys, xs = np.nonzero(full_alpha(cut, image.shape) > 0.5)
    assert abs(xs.mean() - centre[0]) < 8 and abs(ys.mean() - centre[1]) < 8
    assert 150 < xs.size < 2500, "a phone-sized blob, not the floor"


def test_on_black_cuts_the_book_cover() -> None:
    cut = cutout.on_black(sources.photo_rgb("book1.png"))
    h, w = cut.alpha.shape
    assert 150 < h < 200 and 100 < w < 140
    assert (cut.alpha > 0.5).mean() > 0.85, "the cover fills its box"


def test_an_empty_mask_is_an_error() -> None:
    with pytest.raises(ValueError, match="cut-out mask is empty"):
        cutout.crop_to_mask(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.float32))


def test_ellipse_cuts_the_cup_and_saucer_off_the_table() -> None:
    photo = sources.photo_rgb("coffee.png")
    cut = cutout.ellipse(photo, (278.0, 237.0, 204.0, 153.0))
    alpha = full_alpha(cut, photo.shape)
    assert alpha[150, 290] == pytest.approx(1.0), "the coffee in the cup"
    assert alpha[330, 200] == pytest.approx(1.0), "the saucer's rim"
    assert alpha[20, 40] == 0 and alpha[380, 560] == 0, "the table around"
    assert cut.rgb.shape[:2] == cut.alpha.shape and abs(cut.alpha.shape[1] - 2 * 204) <= 12
    with pytest.raises(ValueError, match="outside"):
        cutout.ellipse(photo, (-500.0, -500.0, 10.0, 10.0))
