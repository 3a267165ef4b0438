"""The Raspberry Pi camera through picamera2, imported only when the source is opened.

picamera2 names formats by their 32-bit word, so its "BGR888" holds bytes in R, G, B order: that is the
format asked for, and frames come out RGB without a conversion.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from edge_app.capture.base import Frame, FrameSource, SourceError, register_source
from edge_app.capture.config import PicameraSourceConfig

NOT_INSTALLED = "picamera2 is not installed: install the 'pi' extra on a Raspberry Pi (pip install '.[pi]')"


@register_source
class PicameraSource(FrameSource):
    """Raspberry Pi camera module; frames stamped with time.monotonic()."""

    type = "picamera2"

    def __init__(self, config: PicameraSourceConfig) -> None:
        self.config = config
        self._camera: Any = None
        self._index = 0

    @property
    def live(self) -> bool:
        return True

    @property
    def fps(self) -> float | None:
        return self.config.fps

    def open(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise SourceError(NOT_INSTALLED) from exc
        self.close()
        c = self.config
        camera = None
        try:
            camera = Picamera2()
            video = camera.create_video_configuration(
                main={"size": (c.width, c.height), "format": "BGR888"},
                controls={"FrameRate": c.fps},
                buffer_count=4,
            )
            camera.configure(video)
            camera.start()
        except Exception as exc:  # libcamera raises many kinds; all mean "no camera"
            if camera is not None:
                camera.close()
            raise SourceError(f"Pi camera could not be opened at {c.width}x{c.height}, {c.fps} fps: {exc}") from exc
        self._camera = camera
        self._index = 0

    def read(self) -> Frame | None:
        if self._camera is None:
            raise SourceError("Pi camera: read before open()")
        try:
            array = self._camera.capture_array("main")
        except Exception as exc:
            raise SourceError(f"Pi camera gave no frame: {exc}") from exc
        image = np.ascontiguousarray(np.asarray(array)[..., :3], dtype=np.uint8)
        frame = Frame(image=image, t=time.monotonic(), index=self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            try:
                camera.stop()
            finally:
                camera.close()
