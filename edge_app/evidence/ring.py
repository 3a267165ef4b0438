"""Recent frames in RAM as JPEG bytes, thinned to a steady rate and bounded by age and count.

Frames are kept as JPEG, so the ring costs tens of kilobytes per frame instead of a raw frame's
megabytes. Admitting a frame (thinning, clock restarts) is separate from encoding and adding it, so the
encoding can run on a worker thread (:mod:`edge_app.evidence.recorder`). Timestamps are seconds on the
caller's capture clock; nothing here reads a clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from edge_app.evidence.jpeg import check_rgb, encode_jpeg, fit_bgr

JITTER = 0.1  # share of a frame interval a frame may arrive early and still be kept
EPSILON = 1e-6  # seconds; a frame exactly ``seconds`` old despite float rounding stays


@dataclass(frozen=True)
class JpegFrame:
    """One ring frame: capture time, JPEG bytes and the encoded size."""

    t: float
    jpeg: bytes
    width: int
    height: int


class Thinner:
    """Keeps at most ``fps`` frames per second on a fixed grid, so a 30 fps camera gives an even 5 fps."""

    def __init__(self, fps: float) -> None:
        self.interval = 1.0 / fps
        self.next_due: float | None = None

    def keep(self, t: float) -> bool:
        """Whether the frame at ``t`` is kept; advances the schedule when it is."""
        if self.next_due is not None and t < self.next_due - JITTER * self.interval:
            return False
        if self.next_due is None or t >= self.next_due + self.interval:
            self.next_due = t + self.interval  # first frame, or a gap: restart the grid here
        else:
            self.next_due += self.interval
        return True

    def reset(self) -> None:
        self.next_due = None


class FrameRing:
    """The last ``seconds`` (at most ``max_frames``) of frames at ``fps``, as JPEG."""

    def __init__(self, seconds: float, max_frames: int, fps: float, max_side: int, quality: int) -> None:
        self.seconds = seconds
        self.max_side = max_side
        self.quality = quality
        self.thinner = Thinner(fps)
        self._frames: deque[JpegFrame] = deque(maxlen=max_frames)
        self._bytes = 0
        self._admitted: float | None = None  # capture time of the newest admitted frame

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def nbytes(self) -> int:
        """JPEG bytes held by the ring."""
        return self._bytes

    def push(self, image: np.ndarray, t: float) -> JpegFrame | None:
        """Encode and keep the RGB frame at ``t`` unless it is thinned out; the kept frame or ``None``.

        A timestamp before the newest frame is dropped; one more than ``seconds`` before it means the
        capture clock restarted, so the ring starts over. The same as :meth:`admit`, :meth:`encode` and
        :meth:`add` in a row (a worker thread may do the last two).
        """
        check_rgb(image)
        restart = self.admit(t)
        if restart is None:
            return None
        frame = self.encode(image, t)
        self.add(frame, restart)
        return frame

    def admit(self, t: float) -> bool | None:
        """Whether the frame at ``t`` is kept: ``None`` (thinned out or late), else whether the capture clock
        restarted (so :meth:`add` must start the ring over). Cheap; advances the thinning schedule."""
        newest = self._admitted
        if newest is not None and t <= newest:
            if t >= newest - self.seconds:
                return None
            self.thinner.reset()
            restart = True
        else:
            restart = False
        if not self.thinner.keep(t):
            return None
        self._admitted = t
        return restart

    def encode(self, image: np.ndarray, t: float) -> JpegFrame:
        """The RGB frame at ``t`` as a ring frame (scaled to ``max_side``, JPEG); touches no ring state."""
        bgr, _ = fit_bgr(image, self.max_side)
        return JpegFrame(t, encode_jpeg(bgr, self.quality), bgr.shape[1], bgr.shape[0])

    def add(self, frame: JpegFrame, restart: bool = False) -> None:
        """Keep an admitted, encoded frame (after emptying the ring when ``restart``); drop what is too old."""
        if restart:
            self._frames.clear()
            self._bytes = 0
        if len(self._frames) == self._frames.maxlen:
            self._bytes -= len(self._frames[0].jpeg)
        self._frames.append(frame)
        self._bytes += len(frame.jpeg)
        while self._frames and self._frames[0].t < frame.t - self.seconds - EPSILON:
            self._bytes -= len(self._frames.popleft().jpeg)

    def since(self, t0: float) -> list[JpegFrame]:
        """Frames captured at or after ``t0``, oldest first."""
        return [f for f in self._frames if f.t >= t0]

    def clear(self) -> None:
        self._frames.clear()
        self._bytes = 0
        self._admitted = None
        self.thinner.reset()
