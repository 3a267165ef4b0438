"""Frames through OpenCV: a camera index, an RTSP/HTTP stream or a video file.

Files give media time (CAP_PROP_POS_MSEC, falling back to index / fps) and end with None. Cameras and
streams give ``time.monotonic()``; a failed read is retried a bounded number of times, then SourceError.
"""

from __future__ import annotations

import logging
import math
import re
import time
from pathlib import Path

import cv2
import numpy as np

from edge_app.capture.base import Frame, FrameSource, SourceError, register_source
from edge_app.capture.config import OpenCVSourceConfig
from edge_app.capture.pacing import Sleep

log = logging.getLogger(__name__)

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
_USERINFO = re.compile(r"^([a-z0-9+.-]+://)[^/@]*@", re.IGNORECASE)


def describe_uri(uri: int | str) -> str:
    """How errors name a capture: ``camera 0``, ``stream rtsp://host/x`` (password removed), ``video file x``."""
    if isinstance(uri, int):
        return f"camera {uri}"
    if uri.startswith("/dev/"):
        return f"camera {uri}"
    if is_stream(uri):
        return "stream " + _USERINFO.sub(r"\1***@", uri)
    return f"video file {uri}"


def is_stream(uri: int | str) -> bool:
    """True for network stream URLs."""
    return isinstance(uri, str) and uri.split("://", 1)[0].lower() in STREAM_SCHEMES and "://" in uri


def bgr_to_rgb(bgr: np.ndarray) -> np.ndarray:
    """An RGB uint8 (H, W, 3) copy of an OpenCV frame (BGR, BGRA or grey)."""
    if bgr.ndim == 2:
        return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
    if bgr.shape[2] == 4:
        return cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class VideoFileReader:
    """The frames of one video file, in order, with media time; shared by the OpenCV and scenario sources."""

    def __init__(self, path: Path, label: str = "video file") -> None:
        self.path = Path(path)
        self.label = label
        self.fps: float | None = None
        self.frame_count: int | None = None
        self._cap: cv2.VideoCapture | None = None
        self._next_index = 0
        self._last_t = -math.inf

    @property
    def next_index(self) -> int:
        """Index the next frame read or skipped will have."""
        return self._next_index

    def open(self) -> None:
        self.close()
        if not self.path.exists():
            raise SourceError(f"{self.label} {self.path}: not found")
        if not self.path.is_file():
            raise SourceError(f"{self.label} {self.path}: not a file")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"{self.label} {self.path}: OpenCV cannot open it (not a video, or a codec it lacks)")
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if math.isfinite(fps) and fps > 0 else None
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count = int(count) if math.isfinite(count) and count > 0 else None
        self._cap = cap
        self._next_index = 0
        self._last_t = -math.inf

    def read(self) -> Frame | None:
        """The next frame, or None at the end; SourceError when the file holds no decodable frame at all."""
        cap = self._require_open()
        ok, bgr = cap.read()
        if not ok or bgr is None:
            self._end()
            return None
        index = self._next_index
        self._next_index += 1
        t = self._media_time(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0, index)
        return Frame(image=bgr_to_rgb(bgr), t=t, index=index)

    def skip(self) -> bool:
        """Pass over the next frame without decoding it; False at the end."""
        cap = self._require_open()
        if not cap.grab():
            return False
        self._last_t = self._media_time(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0, self._next_index)
        self._next_index += 1
        return True

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def _require_open(self) -> cv2.VideoCapture:
        if self._cap is None:
            raise SourceError(f"{self.label} {self.path}: read before open()")
        return self._cap

    def _end(self) -> None:
        if self._next_index == 0:
            raise SourceError(f"{self.label} {self.path}: holds no frame OpenCV can decode (empty or corrupt)")
        if self.frame_count is not None and self._next_index < self.frame_count - 1:
            log.warning("%s %s ended after %d of %d frames (truncated?)", self.label, self.path,
                        self._next_index, self.frame_count)

    def _media_time(self, pos: float, index: int) -> float:
        """POS_MSEC when it is sane (finite, increasing), else index / fps."""
        if not math.isfinite(pos) or pos < 0 or pos <= self._last_t or (index > 0 and pos == 0):
            pos = index / (self.fps or 30.0)
        self._last_t = pos
        return pos


@register_source
class OpenCVSource(FrameSource):
    """cv2.VideoCapture on a camera index, /dev/videoN, a stream URL or a video file."""

    type = "opencv"

    def __init__(self, config: OpenCVSourceConfig, sleep: Sleep = time.sleep) -> None:
        self.config = config
        self.label = describe_uri(config.uri)
        self._sleep = sleep
        self._file = None if self.live else VideoFileReader(Path(str(config.uri)))
        self._cap: cv2.VideoCapture | None = None
        self._index = 0
        self._fps: float | None = None

    @property
    def live(self) -> bool:
        uri = self.config.uri
        return isinstance(uri, int) or uri.startswith("/dev/") or is_stream(uri)

    @property
    def fps(self) -> float | None:
        return self._file.fps if self._file is not None else self._fps

    def open(self) -> None:
        if self._file is not None:
            self._file.open()
            return
        self.close()
        uri = self.config.uri
        if is_stream(uri):
            ms = int(self.config.timeout * 1000)
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
            cap = cv2.VideoCapture(str(uri), cv2.CAP_FFMPEG, params)
        else:
            cap = cv2.VideoCapture(uri)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"{self.label} could not be opened")
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, self.config.width),
                            (cv2.CAP_PROP_FRAME_HEIGHT, self.config.height), (cv2.CAP_PROP_FPS, self.config.fps)):
            if value is not None:
                cap.set(prop, float(value))
        fps = cap.get(cv2.CAP_PROP_FPS)
        self._fps = float(fps) if math.isfinite(fps) and fps > 0 else None
        self._cap = cap
        self._index = 0

    def read(self) -> Frame | None:
        if self._file is not None:
            return self._file.read()
        if self._cap is None:
            raise SourceError(f"{self.label}: read before open()")
        tries = self.config.read_retries + 1
        for attempt in range(tries):
            ok, bgr = self._cap.read()
            if ok and bgr is not None:
                frame = Frame(image=bgr_to_rgb(bgr), t=time.monotonic(), index=self._index)
                self._index += 1
                return frame
            if attempt + 1 < tries:
                self._sleep(self.config.retry_delay)
        raise SourceError(f"{self.label} gave no frame ({tries} tries in a row failed)")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._cap is not None:
            self._cap.release()
            self._cap = None
