"""Single-person pose (MoveNet Lightning, 192x192) with the decoding done in numpy.

The model file ends at the four head convolutions, channels-last on a 48x48 grid: keypoint heatmaps
``[1,48,48,17]``, person centre ``[1,48,48,1]``, keypoint regression from the centre
``[1,48,48,34]`` and sub-cell offsets ``[1,48,48,34]`` (y, x pairs). Each head comes out as
``clamp(gain * x + shift)`` (see HEAD_CLAMPS; the clamp is a ReLU/ReLU6 fused into the convolution):
the clamped-away values are never used, and the narrower ranges give int8 a much finer output scale.
Decoding (as MoveNet's own graph does it): pick the centre cell (sigmoid weighted towards the image
centre), regress each keypoint from it, pick the heatmap cell nearest that guess, add the offset.

Input: RGB float 0..255 ``[1,192,192,3]``; the whole frame letterboxed (zero padding), or a square
crop around a person box so a person who is small in the frame still fills the input.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_app.vision.preprocess import Letterbox, letterbox, square_crop
from edge_app.vision.runtime import ModelError, PixelInput, TFLiteModel

KEYPOINT_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
    "right_knee", "left_ankle", "right_ankle",
)
INPUT_SIZE = 192
GRID = 48
INPUT_SHAPE = (1, INPUT_SIZE, INPUT_SIZE, 3)
K = len(KEYPOINT_NAMES)
# Output tensors by the head they come from (regression and offsets have the same shape); every head
# output ends in CLAMPED (a file without the clamps is an outdated build and is refused).
HEADS = {"heatmap": "kpt_heatmap_0/", "centre": "center_0/", "regress": "kpt_regress_0/", "offset": "kpt_offset_0/"}
CLAMPED = "/clamped"
HEAD_SHAPES = {"heatmap": (1, GRID, GRID, K), "centre": (1, GRID, GRID, 1),
               "regress": (1, GRID, GRID, 2 * K), "offset": (1, GRID, GRID, 2 * K)}
# head -> (gain, shift, clamp op): the file outputs clamp(gain * x + shift) instead of x.
# Logits below -8 (sigmoid < 0.0004) read as -8; regression is kept within +-32 cells, offsets
# within +-3 cells (the values used lie within about -1..2).
HEAD_CLAMPS: dict[str, tuple[float, float, str]] = {
    "heatmap": (1.0, 8.0, "Relu"),
    "centre": (1.0, 8.0, "Relu"),
    "regress": (3.0 / 32.0, 3.0, "Relu6"),
    "offset": (1.0, 3.0, "Relu6"),
}
BOX_MARGIN = 1.25  # a person box's longer side is enlarged by this much for the square crop
_DIST_BIAS = 1.8  # MoveNet's weighting: score / (distance in cells + 1.8)

_Y, _X = np.mgrid[0:GRID, 0:GRID].astype(np.float32)
CENTRE_WEIGHT = 1.0 / (np.sqrt((_Y - GRID / 2) ** 2 + (_X - GRID / 2) ** 2) + _DIST_BIAS)


@dataclass(frozen=True)
class Keypoint:
    name: str
    x: float  # frame pixels
    y: float
    score: float


@dataclass(frozen=True)
class Pose:
    keypoints: tuple[Keypoint, ...]  # in KEYPOINT_NAMES order
    score: float  # mean keypoint score

    def get(self, name: str) -> Keypoint:
        """The keypoint called ``name`` (one of KEYPOINT_NAMES)."""
        try:
            return self.keypoints[KEYPOINT_NAMES.index(name)]
        except ValueError:
            raise KeyError(f"unknown keypoint {name!r}; expected one of {KEYPOINT_NAMES}") from None

    def as_array(self) -> np.ndarray:
        """(17, 3) x, y, score."""
        return np.array([(k.x, k.y, k.score) for k in self.keypoints], dtype=np.float32)


PIXELS = PixelInput(lambda rgb: rgb.astype(np.float32))  # float 0..255, RGB, channels last


def prepare(
    frame: np.ndarray, box: tuple[float, float, float, float] | None = None
) -> tuple[np.ndarray, Letterbox]:
    """RGB uint8 frame -> model input [1, 192, 192, 3] float 0..255 and the frame mapping."""
    pixels, mapping = square_pixels(frame, box)
    return PIXELS.reference(pixels), mapping


def square_pixels(
    frame: np.ndarray, box: tuple[float, float, float, float] | None = None
) -> tuple[np.ndarray, Letterbox]:
    """RGB uint8 frame -> the 192x192 RGB uint8 square the model looks at (letterboxed frame or padded
    person box) and the frame mapping."""
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an RGB frame (H, W, 3), got shape {frame.shape}")
    if box is None:
        image, mapping = letterbox(frame, INPUT_SIZE, 0)
    else:
        x1, y1, x2, y2 = box
        if x2 <= x1 or y2 <= y1:
            raise ValueError(f"empty person box {box}")
        side = max(x2 - x1, y2 - y1) * BOX_MARGIN
        image, mapping = square_crop(frame, ((x1 + x2) / 2, (y1 + y2) / 2), side, INPUT_SIZE)
    return image, mapping


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _unclamp(head: str, value: np.ndarray) -> np.ndarray:
    gain, shift, _ = HEAD_CLAMPS[head]
    return (value - shift) / gain


def decode(heatmap: np.ndarray, centre: np.ndarray, regress: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Head outputs (as the file gives them) -> (17, 3) x, y in model input pixels and score."""
    heat = _sigmoid(_unclamp("heatmap", heatmap).reshape(GRID, GRID, K))
    centre_score = _sigmoid(_unclamp("centre", centre).reshape(GRID, GRID)) * CENTRE_WEIGHT
    cy, cx = np.unravel_index(np.argmax(centre_score), (GRID, GRID))
    guess = _unclamp("regress", regress.reshape(GRID, GRID, K, 2)[cy, cx]) + np.array([cy, cx], np.float32)
    dist = np.sqrt((_Y[..., None] - guess[:, 0]) ** 2 + (_X[..., None] - guess[:, 1]) ** 2)
    flat = np.argmax((heat / (dist + _DIST_BIAS)).reshape(-1, K), axis=0)
    ky, kx = np.divmod(flat, GRID)
    parts = np.arange(K)
    off = _unclamp("offset", offset.reshape(GRID, GRID, K, 2)[ky, kx, parts])
    scale = INPUT_SIZE / GRID
    out = np.empty((K, 3), dtype=np.float32)
    out[:, 0] = (kx + off[:, 1]) * scale
    out[:, 1] = (ky + off[:, 0]) * scale
    out[:, 2] = heat[ky, kx, parts]
    return out


class PoseEstimator:
    """MoveNet Lightning: ``estimate(frame, box=None)`` -> the pose of the (central or boxed) person."""

    def __init__(self, model_path: str | Path, threads: int = 2, runtime: str | None = None) -> None:
        self.model = TFLiteModel(model_path, threads=threads, runtime=runtime,
                                 expect_inputs=[INPUT_SHAPE], expect_outputs=list(HEAD_SHAPES.values()))
        self._order: dict[str, int] = {}
        for head, tag in HEADS.items():
            found = [i for i, spec in enumerate(self.model.outputs)
                     if tag in spec.name and spec.name.endswith(CLAMPED)]
            if len(found) != 1 or self.model.outputs[found[0]].shape != HEAD_SHAPES[head]:
                raise ModelError(f"model file {self.model.path} has no single {tag}...{CLAMPED} output of shape "
                                 f"{HEAD_SHAPES[head]}: wrong or outdated model file (run `make models`)")
            self._order[head] = found[0]

    def estimate_raw(self, tensor: np.ndarray) -> np.ndarray:
        """Model input [1, 192, 192, 3] -> (17, 3) x, y (input pixels), score."""
        outputs = self.model.run(tensor)
        return decode(*(outputs[self._order[h]] for h in ("heatmap", "centre", "regress", "offset")))

    def estimate(self, frame: np.ndarray, box: tuple[float, float, float, float] | None = None) -> Pose:
        """Pose of the person in ``box`` (x1, y1, x2, y2 frame pixels), or of the central person."""
        pixels, mapping = square_pixels(frame, box)
        outputs = self.model.run_pixels(pixels, PIXELS)
        raw = decode(*(outputs[self._order[h]] for h in ("heatmap", "centre", "regress", "offset")))
        xy = mapping.to_frame(raw[:, :2])
        keypoints = tuple(Keypoint(n, float(p[0]), float(p[1]), float(s))
                          for n, p, s in zip(KEYPOINT_NAMES, xy, raw[:, 2], strict=True))
        return Pose(keypoints, float(raw[:, 2].mean()))
