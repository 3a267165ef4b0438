"""One frame: stack the scene's layers for what is visible, then pass it through a (simulated) camera.

The camera adds what a real sensor does between two frames of a still scene: a little shake (sub-pixel
to ~2 px, a tenth of a degree), slow exposure drift (a few percent) and sensor noise, all from one seeded
generator so a render is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from tools.scenarios.catalog import EXTRAS, POSES, PROPS, VIDEO_FPS, PastedPerson, StudioPose
from tools.scenarios.scene import HEIGHT, WIDTH, Layer, SceneAssets
from tools.scenarios.spec import Segment

CameraState = Literal["normal", "covered", "knocked"]
SHAKE_PX = 1.2  # standard deviation of the camera shake
SHAKE_DEG = 0.12
DRIFT = 0.03  # exposure drift amplitude (fraction)
NOISE = 2.2  # sensor noise standard deviation (grey levels)


@dataclass(frozen=True)
class View:
    """What the camera sees during a segment."""

    camera: CameraState = "normal"
    candidate: str | None = None  # a POSES name, None when the seat is empty
    extras: tuple[str, ...] = ()  # EXTRAS names
    props: tuple[str, ...] = ()  # PROPS names
    length: float = 0.0  # the segment's seconds (people walking cross the frame in that time)


def pingpong(step: int, length: int) -> int:
    """Index into ``length`` frames played forwards then backwards, endlessly."""
    if length <= 1:
        return 0
    period = 2 * (length - 1)
    step %= period
    return step if step < length else period - step


def blend(image: np.ndarray, layer: Layer) -> None:
    rgb, alpha = layer
    a = alpha[..., None]
    image *= 1.0 - a
    image += rgb * a


def view_of(segment: Segment) -> View:
    """What a scenario segment shows."""
    return View(camera=segment.camera, candidate=segment.candidate, extras=tuple(segment.extras),
                props=tuple(segment.props), length=segment.end - segment.start)


def layers(assets: SceneAssets, view: View, seconds: float) -> list[tuple[str, Layer]]:
    """The named layers over the backdrop, far to near, ``seconds`` into a segment showing a normal ``view``.

    Names: ``candidate``, ``extra:<name>``, ``desk``, ``prop:<name>``.
    """
    pose = POSES[view.candidate] if view.candidate else None
    out: list[tuple[str, Layer]] = []
    for name in view.extras:
        person = EXTRAS[name]
        if person.walk_to is None:
            out.append((f"extra:{name}", assets.pasted(person)))
        else:
            share = min(max(seconds / view.length, 0.0), 1.0) if view.length > 0 else 0.0
            at = (person.at[0] + share * (person.walk_to[0] - person.at[0]),
                  person.at[1] + share * (person.walk_to[1] - person.at[1]))
            out.append((f"extra:{name}", assets.pasted_at(person, at)))
    if isinstance(pose, PastedPerson) and pose.behind_candidate:
        out.append(("candidate", assets.pasted(pose)))
    if isinstance(pose, StudioPose):
        step = int(seconds * VIDEO_FPS)
        out.append(("candidate", assets.studio(pose.frames[pingpong(step, len(pose.frames))])))
    elif isinstance(pose, PastedPerson) and not pose.behind_candidate:
        out.append(("candidate", assets.pasted(pose)))
    low = [name for name in view.props if getattr(PROPS[name], "behind_desk", False)]
    out += [(f"prop:{name}", assets.prop(PROPS[name])) for name in low]
    out.append(("desk", assets.desk_layer))
    out += [(f"prop:{name}", assets.prop(PROPS[name])) for name in view.props if name not in low]
    return out


def scene_image(assets: SceneAssets, view: View, seconds: float) -> np.ndarray:
    """The noiseless scene (float32 RGB) ``seconds`` into a segment showing ``view``."""
    if view.camera == "covered":
        return assets.covered.copy()
    if view.camera == "knocked":
        return assets.knocked.copy()
    image = assets.plate.copy()
    for _, layer in layers(assets, view, seconds):
        blend(image, layer)
    return image


class Camera:
    """Shake, exposure drift and noise for ``frames`` frames at ``fps``, reproducible from ``seed``."""

    def __init__(self, seed: int, frames: int, fps: float) -> None:
        self.rng = np.random.default_rng(seed)
        self.fps = fps
        self.shake = self._smooth_walk(frames, 3, 0.85)
        self.phase = float(self.rng.uniform(0, 2 * np.pi))

    def _smooth_walk(self, frames: int, dims: int, keep: float) -> np.ndarray:
        """AR(1) noise with unit standard deviation: neighbouring frames move together, like a hand-tight mount."""
        out = np.zeros((max(frames, 1), dims))
        value = self.rng.standard_normal(dims)
        for k in range(frames):
            value = keep * value + np.sqrt(1 - keep * keep) * self.rng.standard_normal(dims)
            out[k] = value
        return out

    def capture(self, image: np.ndarray, index: int) -> np.ndarray:
        """The scene as frame ``index`` of the camera: RGB uint8."""
        dx, dy, turn = self.shake[min(index, len(self.shake) - 1)] * (SHAKE_PX, SHAKE_PX, SHAKE_DEG)
        matrix = cv2.getRotationMatrix2D((WIDTH / 2, HEIGHT / 2), float(turn), 1.0)
        matrix[:, 2] += (dx, dy)
        moved = cv2.warpAffine(image, matrix, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        seconds = index / self.fps
        gain = 1.0 + DRIFT * np.sin(2 * np.pi * seconds / 23.0 + self.phase) + 0.004 * self.rng.standard_normal()
        noise = self.rng.standard_normal(moved.shape, dtype=np.float32) * NOISE
        noisy = moved * np.float32(gain) + noise
        return np.clip(noisy, 0, 255).astype(np.uint8)


def describe_view(view: View) -> dict[str, object]:
    """The view as plain data for truth.json's segments."""
    pose = POSES.get(view.candidate) if view.candidate else None
    return {
        "camera": view.camera,
        "candidate": view.candidate,
        "candidate_person": getattr(pose, "person", None),
        "gaze": getattr(pose, "gaze", None),
        "extras": list(view.extras),
        "props": list(view.props),
    }
