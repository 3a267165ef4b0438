"""Scenes for the analysis and loop tests: a real background with a real portrait pasted in the seat."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

SIZE = (640, 480)
SEAT = (200, 60, 440, 480)  # where the portrait goes: x1, y1, x2, y2

Scene = Callable[[str | None, int], np.ndarray]


@pytest.fixture(scope="session")
def scene(photo) -> Scene:  # type: ignore[no-untyped-def]
    """scene("obama2.jpg", seed) -> 640x480 RGB frame with sensor noise; scene(None, seed): the empty room."""
    background = cv2.resize(photo("coffee.png"), SIZE)
    x1, y1, x2, y2 = SEAT

    def make(person: str | None, seed: int) -> np.ndarray:
        frame = background.copy()
        if person is not None:
            portrait = photo(person)
            h, w = portrait.shape[:2]
            scale = min((x2 - x1) / w, (y2 - y1) / h)
            pw, ph = int(w * scale), int(h * scale)
            px, py = x1 + (x2 - x1 - pw) // 2, y2 - ph
            frame[py:py + ph, px:px + pw] = cv2.resize(portrait, (pw, ph), interpolation=cv2.INTER_AREA)
        noise = np.random.default_rng(seed).normal(0, 2.5, frame.shape)
        return np.clip(frame + noise, 0, 255).astype(np.uint8)

    return make


def write_scenario(folder: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    """A scenario folder as the renderer makes it: video.avi (MJPG) and truth.json."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(folder / "video.avi"), cv2.VideoWriter_fourcc(*"MJPG"), fps, SIZE)
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    truth = {"name": folder.name, "description": "test", "fps": fps, "duration": len(frames) / fps,
             "frame_size": list(SIZE), "enrolled": "obama.jpg", "calibration_seconds": 5, "alerts": [],
             "segments": []}
    (folder / "truth.json").write_text(json.dumps(truth))
    return folder
