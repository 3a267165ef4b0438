"""The scene's layers, built once per render from real media: studio backdrop, desk, people, props, views.

Frame geometry: the studio video (360x288) is scaled by 640/360 and its rows 16..496 kept, so every
studio frame and the backdrop line up in the 640x480 frame. Pasted people and props are full-frame RGB
layers with an alpha mask, ready to stack.

The empty backdrop ("plate") is the per-pixel median of the backdrop wherever the video shows it; the
part the seated man never uncovers (behind his head) is the backdrop's own smooth colour trend fitted
over the uncovered pixels (a uniform blue cloth). Only an absent candidate shows that part.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from tools.scenarios import cutout, sources
from tools.scenarios.catalog import (
    DESK_TOP,
    POSES,
    VIDEO,
    BookProp,
    DeskObjectProp,
    PastedPerson,
    PhoneProp,
    Prop,
    StudioPose,
)

WIDTH, HEIGHT = 640, 480
SCALE = WIDTH / 360.0
OFFSET_Y = 16  # studio rows above the frame after scaling
PLATE_STEP = 50  # every 50th video frame feeds the backdrop estimate
MIN_SEEN = 10  # a pixel counts as uncovered backdrop when at least this many of those frames show it
KEY_SEED = (180, 280)  # video pixel inside the seated man (his sweater) for the chroma key
Layer = tuple[np.ndarray, np.ndarray]  # RGB float32 (H, W, 3) and alpha float32 (H, W), frame-sized


def to_frame(video_rgb: np.ndarray, interpolation: int = cv2.INTER_CUBIC) -> np.ndarray:
    """A 360x288 studio image in frame geometry (640x480)."""
    big = cv2.resize(video_rgb, (WIDTH, round(video_rgb.shape[0] * SCALE)), interpolation=interpolation)
    return big[OFFSET_Y : OFFSET_Y + HEIGHT]


def place(rgb: np.ndarray, alpha: np.ndarray, matrix: np.ndarray) -> Layer:
    """Warp a cut-out into the frame with a 2x3 affine ``matrix`` (source -> frame pixels)."""
    size = (WIDTH, HEIGHT)
    shrink = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if shrink < 0.8:  # shrink by area averaging first, so a large photo does not alias
        small = (max(1, round(rgb.shape[1] * shrink)), max(1, round(rgb.shape[0] * shrink)))
        rgb = cv2.resize(rgb, small, interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha, small, interpolation=cv2.INTER_AREA)
        matrix = matrix.copy()
        matrix[:, :2] /= shrink
    layer = cv2.warpAffine(rgb.astype(np.float32), matrix, size, flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    mask = cv2.warpAffine(alpha.astype(np.float32), matrix, size, flags=cv2.INTER_LINEAR, borderValue=0)
    return layer, np.clip(mask, 0.0, 1.0)


def similarity(scale: float, angle: float, src: tuple[float, float], dst: tuple[float, float]) -> np.ndarray:
    """2x3 matrix: rotate by ``angle`` degrees and scale about ``src``, then move ``src`` to ``dst``."""
    matrix = cv2.getRotationMatrix2D(src, angle, scale)
    matrix[:, 2] += np.array(dst) - np.array(src)
    return matrix


def backdrop_plate(samples: list[np.ndarray]) -> np.ndarray:
    """The empty studio backdrop (360x288 RGB) from video frames showing the man in different positions."""
    stack = np.stack(samples).astype(np.float32)
    backdrop = np.stack([cutout.blue_backdrop(f, strict=True) for f in samples])
    median = np.empty(stack.shape[1:], np.float32)
    for c in range(3):
        channel = np.where(backdrop, stack[..., c], np.nan)
        with np.errstate(all="ignore"):
            counts = backdrop.sum(axis=0)
            seen = counts >= MIN_SEEN
            median[..., c] = np.where(seen, np.nanmedian(np.where(seen, channel, 0.0), axis=0), np.nan)
    h, w = samples[0].shape[:2]
    static = np.zeros((h, w), bool)
    static[: 236, :24] = True  # the dark stand at the left edge never moves and is not backdrop blue
    median[static] = samples[0][static].astype(np.float32)
    known = ~np.isnan(median[..., 0])
    fit_pixels = known & ~static
    ys, xs = np.nonzero(fit_pixels)
    yy, xx = np.mgrid[0:h, 0:w]

    def terms(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        u, v = x / w, y / h
        return np.stack([np.ones_like(u), u, v, u * u, v * v, u * v], axis=-1)

    trend = np.empty_like(median)
    for c in range(3):
        coef, *_ = np.linalg.lstsq(terms(xs.astype(np.float64), ys.astype(np.float64)), median[ys, xs, c], rcond=None)
        trend[..., c] = terms(xx.astype(np.float64), yy.astype(np.float64)) @ coef
    weight = cutout.feather(~known, 3.0)[..., None]
    plate = np.where(known[..., None], median, trend) * (1 - weight) + trend * weight
    return np.clip(plate, 0, 255).astype(np.uint8)


PLATE_FRAMES = tuple(range(0, 4900, PLATE_STEP))


@functools.lru_cache(maxsize=1)
def studio_frames() -> dict[int, np.ndarray]:
    """Every studio video frame the catalog's poses and the backdrop estimate use (decoded once per process)."""
    wanted = {i for p in POSES.values() if isinstance(p, StudioPose) for i in p.frames} | set(PLATE_FRAMES)
    return sources.video_frames_at(VIDEO, frozenset(wanted))


@functools.lru_cache(maxsize=1)
def studio_plate() -> np.ndarray:
    """The empty studio backdrop in frame geometry, float32 RGB."""
    frames = studio_frames()
    return to_frame(backdrop_plate([frames[i] for i in PLATE_FRAMES])).astype(np.float32)


class SceneAssets:
    """Layers for one render, computed on first use and kept (cut-outs are the slow part)."""

    def __init__(self) -> None:
        self._frames = studio_frames()

    @property
    def plate(self) -> np.ndarray:
        return studio_plate()

    @functools.cached_property
    def desk(self) -> np.ndarray:
        """A wooden table top (the coffee photo's table, turned so the grain runs across), foreshortened."""
        wood = sources.photo_rgb("coffee.png")[0:400, 490:600]
        wood = cv2.rotate(wood, cv2.ROTATE_90_CLOCKWISE)
        return cv2.resize(wood, (WIDTH, HEIGHT - DESK_TOP), interpolation=cv2.INTER_AREA).astype(np.float32)

    @functools.cached_property
    def desk_layer(self) -> Layer:
        """The desk as an opaque layer over the frame's rows from DESK_TOP down."""
        rgb = np.zeros((HEIGHT, WIDTH, 3), np.float32)
        alpha = np.zeros((HEIGHT, WIDTH), np.float32)
        rgb[DESK_TOP:], alpha[DESK_TOP:] = self.desk, 1.0
        return rgb, alpha

    @functools.lru_cache(maxsize=64)  # noqa: B019 - one SceneAssets per render
    def studio(self, index: int) -> Layer:
        """The seated man of video frame ``index``, keyed off the backdrop, in frame geometry."""
        frame = self._frames[index]
        cut = cutout.chroma_key(frame, KEY_SEED)
        full_rgb = np.zeros_like(frame)
        full_alpha = np.zeros(frame.shape[:2], np.float32)
        x1, y1 = cut.origin
        h, w = cut.alpha.shape
        full_rgb[y1 : y1 + h, x1 : x1 + w] = cut.rgb
        full_alpha[y1 : y1 + h, x1 : x1 + w] = cut.alpha
        return to_frame(full_rgb).astype(np.float32), np.clip(to_frame(full_alpha, cv2.INTER_LINEAR), 0, 1)

    @functools.lru_cache(maxsize=8)  # noqa: B019
    def _person_cut(self, photo: str, box: tuple[int, int, int, int], face: tuple[int, int, int, int]) -> cutout.Cutout:
        return cutout.grabcut_person(sources.photo_rgb(photo), box, face)

    @functools.lru_cache(maxsize=8)  # noqa: B019
    def pasted(self, person: PastedPerson) -> Layer:
        return self.pasted_at(person, person.at)

    def pasted_at(self, person: PastedPerson, at: tuple[float, float]) -> Layer:
        """The person cut out of their photo with the face centre at ``at`` (frame pixels)."""
        cut = self._person_cut(person.photo, person.box, person.face)
        fx1, fy1, fx2, fy2 = person.face
        centre = ((fx1 + fx2) / 2 - cut.origin[0], (fy1 + fy2) / 2 - cut.origin[1])
        scale = person.face_side / max(fx2 - fx1, fy2 - fy1)
        return place(cut.rgb, cut.alpha, similarity(scale, 0.0, centre, at))

    @functools.lru_cache(maxsize=8)  # noqa: B019
    def prop(self, prop: Prop) -> Layer:
        if isinstance(prop, PhoneProp):
            image, centre = sources.phone_photo(prop.photo)
            cut = cutout.dark_object(image, centre, prop.radius)
            rgb, alpha = upright(cut)
            scale = prop.height / rgb.shape[0]
            src = (rgb.shape[1] / 2, rgb.shape[0] / 2)
            return place(rgb, alpha, similarity(scale, prop.angle, src, prop.at))
        if isinstance(prop, DeskObjectProp):
            cut = cutout.ellipse(sources.photo_rgb(prop.photo), prop.ellipse)
            scale = prop.width / cut.rgb.shape[1]
            low = (cut.rgb.shape[1] / 2, float(cut.rgb.shape[0]))  # its lowest point stands at ``at``
            return place(cut.rgb, cut.alpha, similarity(scale, 0.0, low, prop.at))
        assert isinstance(prop, BookProp)
        cut = cutout.on_black(sources.photo_rgb(prop.photo))
        scale = prop.height / cut.rgb.shape[0]
        centre = (cut.rgb.shape[1] / 2, cut.rgb.shape[0] / 2)
        turned = similarity(scale, prop.angle, centre, (prop.at[0], 0.0))
        corners = np.array([[0, 0, 1], [cut.rgb.shape[1], 0, 1], [0, cut.rgb.shape[0], 1],
                            [cut.rgb.shape[1], cut.rgb.shape[0], 1]], np.float64) @ turned.T
        turned[1, 2] += prop.at[1] - corners[:, 1].max()
        return place(cut.rgb, cut.alpha, turned)

    @functools.cached_property
    def covered(self) -> np.ndarray:
        """A hand over the lens: the skin of a real hand photo, far out of focus and barely lit."""
        skin = sources.photo_rgb("psmove.png")[400:500, 640:740].astype(np.float32)
        view = cv2.resize(skin, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
        return cv2.GaussianBlur(view, (0, 0), 25) * 0.12

    @functools.cached_property
    def knocked(self) -> np.ndarray:
        """The camera knocked down towards the desk: the coffee photo, tilted, close and a little soft."""
        coffee = sources.photo_rgb("coffee.png")[:, 33:566]
        view = cv2.resize(coffee, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC).astype(np.float32)
        tilted = cv2.warpAffine(view, cv2.getRotationMatrix2D((WIDTH / 2, HEIGHT / 2), 14.0, 1.2), (WIDTH, HEIGHT),
                                borderMode=cv2.BORDER_REFLECT)
        return np.asarray(cv2.GaussianBlur(tilted, (0, 0), 1.0), dtype=np.float32)


def upright(cut: cutout.Cutout) -> tuple[np.ndarray, np.ndarray]:
    """Rotate a phone cut-out so its long side is vertical (minimum-area rectangle of the mask)."""
    ys, xs = np.nonzero(cut.alpha > 0.5)
    (cx, cy), (w, h), angle = cv2.minAreaRect(np.stack([xs, ys], 1).astype(np.float32))
    if w > h:
        angle -= 90.0
    side = int(np.ceil(np.hypot(*cut.alpha.shape))) + 4
    matrix = similarity(1.0, angle, (cx, cy), (side / 2, side / 2))
    rgb = cv2.warpAffine(cut.rgb, matrix, (side, side), flags=cv2.INTER_CUBIC)
    alpha = cv2.warpAffine(cut.alpha, matrix, (side, side), flags=cv2.INTER_LINEAR)
    box = cutout.crop_to_mask(rgb, alpha, margin=1)
    return box.rgb, box.alpha
