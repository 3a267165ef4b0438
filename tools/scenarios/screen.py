"""The candidate's PC screen in a scenario: an image file composited onto a fixed monitor quad of every frame.

The camera unit sits behind and about 45° to the side of the candidate, so it sees the PC screen at an
angle: the image is fitted onto a light page (the exam client's window) inside a thin dark bezel and warped
onto :data:`SCREEN_QUAD`, whose near (right) edge is taller than its far edge (a 5:4 office monitor turned
about 45° away, its near edge 130 px tall in a 640x480 frame). In the rendered scenarios that is x 532-636,
y 30-160: the blue backdrop right of the candidate's head, clear of the person and the desk strip, and
inside the candidate's calibrated box, so the tamper check's view of the scenery does not change when the
screen appears or goes. It is drawn over whatever is there.

The file is looked at no more than every ``check_every`` seconds (its mtime and size), re-read when it
changed and dropped when it is removed. A file OpenCV cannot decode gives no overlay and one warning.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import cv2
import numpy as np

from edge_app.capture.pacing import Clock

log = logging.getLogger(__name__)

# corners as shares of the frame width and height: top-left, top-right, bottom-right, bottom-left
SCREEN_QUAD = ((0.832, 0.090), (0.994, 0.062), (0.994, 0.333), (0.832, 0.306))
SCREEN_ASPECT = 5 / 4  # the monitor's face, seen straight on (width / height)
BEZEL = 0.03  # share of the monitor's width taken by each side of the bezel
BEZEL_RGB = (38, 38, 42)
PAGE_RGB = (232, 234, 236)  # the exam client's window around the image
CONTENT = 0.96  # share of the panel's height the image may fill
BLUR = 0.6  # sigma (px) of the lens softness on the warped screen
NOISE = 2.2  # sensor noise (grey levels) added to the screen in every frame, like the scenario camera's
MAX_BYTES = 16 * 1024 * 1024
Key = tuple[int, int]  # (mtime_ns, size)


class ScreenOverlay:
    """``apply(frame)`` composites the current content of ``path`` onto the screen quad of an RGB frame."""

    def __init__(self, path: Path, clock: Clock = time.monotonic, check_every: float = 0.5,
                 quad: tuple[tuple[float, float], ...] = SCREEN_QUAD, seed: int = 0) -> None:
        self.path = Path(path)
        self.check_every = check_every
        self.quad = np.array(quad, dtype=np.float32)
        self._clock = clock
        self._rng = np.random.default_rng(seed)
        self._next_check: float | None = None
        self._key: Key | None = None
        self._image: np.ndarray | None = None  # the decoded file, RGB
        self._warned: Key | None = None
        self._patch: tuple[tuple[int, int], np.ndarray, np.ndarray] | None = None  # (x, y), RGB, alpha
        self._patch_size: tuple[int, int] | None = None

    @property
    def showing(self) -> bool:
        """True while a readable image is composited."""
        return self._image is not None

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """The frame with the screen composited (a new array), or the frame itself while nothing is shown."""
        now = self._clock()
        if self._next_check is None or now >= self._next_check or now < self._next_check - self.check_every:
            self._next_check = now + self.check_every
            self._refresh()
        if self._image is None:
            return frame
        height, width = frame.shape[:2]
        if self._patch is None or self._patch_size != (width, height):
            self._patch = self._render(self._image, (width, height))
            self._patch_size = (width, height)
        (x, y), rgb, alpha = self._patch
        out = frame.copy()
        region = out[y:y + rgb.shape[0], x:x + rgb.shape[1]].astype(np.float32)
        noise = self._rng.standard_normal(rgb.shape, dtype=np.float32) * NOISE  # the camera's, as on the scene
        blended = region + (rgb + noise - region) * alpha
        out[y:y + rgb.shape[0], x:x + rgb.shape[1]] = np.clip(blended, 0, 255).round().astype(np.uint8)
        return out

    def _refresh(self) -> None:
        try:
            stat = os.stat(self.path)
        except OSError:  # removed (or never there): the PC client hides the code once paired
            self._set(None, None)
            return
        key = (stat.st_mtime_ns, stat.st_size)
        if key == self._key:
            return
        image, problem = self._read(stat.st_size)
        if image is None and self._warned != key:
            log.warning("scenario screen %s: %s; showing no screen", self.path, problem)
            self._warned = key
        self._set(key, image)

    def _read(self, size: int) -> tuple[np.ndarray | None, str]:
        if size > MAX_BYTES:
            return None, f"{size} bytes, more than {MAX_BYTES}"
        try:
            data = np.fromfile(self.path, dtype=np.uint8)
        except OSError as exc:
            return None, f"cannot read it ({exc.strerror or exc})"
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if bgr is None:
            return None, "not an image OpenCV can decode"
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), ""

    def _set(self, key: Key | None, image: np.ndarray | None) -> None:
        self._key, self._image, self._patch = key, image, None

    def _render(self, image: np.ndarray, frame_size: tuple[int, int]) -> tuple[tuple[int, int], np.ndarray,
                                                                                 np.ndarray]:
        """The monitor warped onto the quad: its top-left pixel, RGB (float32) and alpha (float32, HxWx1)."""
        width, height = frame_size
        corners = self.quad * np.array([width, height], dtype=np.float32)
        x1, y1 = np.floor(corners.min(axis=0)).astype(int)
        x2, y2 = np.ceil(corners.max(axis=0)).astype(int)
        x1, y1, x2, y2 = max(0, x1), max(0, y1), min(width, x2), min(height, y2)
        near = max(float(corners[3, 1] - corners[0, 1]), float(corners[2, 1] - corners[1, 1]))
        face = monitor_face(image, max(16, round(near * SCREEN_ASPECT)))  # its tallest edge drawn 1:1
        fh, fw = face.shape[:2]
        source = np.array([(0, 0), (fw, 0), (fw, fh), (0, fh)], dtype=np.float32)
        matrix = cv2.getPerspectiveTransform(source, corners - np.array([x1, y1], dtype=np.float32))
        size = (x2 - x1, y2 - y1)
        rgb = cv2.warpPerspective(face, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        alpha = cv2.warpPerspective(np.ones((fh, fw), np.float32), matrix, size, flags=cv2.INTER_LINEAR)
        rgb = cv2.GaussianBlur(rgb, (0, 0), BLUR)
        return (x1, y1), rgb.astype(np.float32), alpha[..., None]


def monitor_face(image: np.ndarray, face_width: int) -> np.ndarray:
    """The monitor seen straight on, ``face_width`` pixels wide: bezel, page, and ``image`` fitted centred."""
    face_height = round(face_width / SCREEN_ASPECT)
    bezel = max(1, round(face_width * BEZEL))
    face = np.empty((face_height, face_width, 3), np.uint8)
    face[:] = BEZEL_RGB
    panel_w, panel_h = face_width - 2 * bezel, face_height - 2 * bezel
    face[bezel:bezel + panel_h, bezel:bezel + panel_w] = PAGE_RGB
    ih, iw = image.shape[:2]
    scale = min(panel_w * CONTENT / iw, panel_h * CONTENT / ih)
    cw, ch = max(1, round(iw * scale)), max(1, round(ih * scale))
    shrink = cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST
    content = cv2.resize(image, (cw, ch), interpolation=shrink)
    cx, cy = (face_width - cw) // 2, (face_height - ch) // 2
    face[cy:cy + ch, cx:cx + cw] = content
    return face
