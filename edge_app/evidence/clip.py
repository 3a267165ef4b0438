"""Clips: ring frames around an alert written as an MJPG .avi at a constant rate that keeps real time.

A clip plays at the ring's rate. Each output slot shows the newest frame captured by then, so a
camera that delivered fewer frames (or paused) gives repeated frames instead of a clip that plays
too fast: the clip's length in frames always matches the time it covers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge_app.evidence.errors import EvidenceError
from edge_app.evidence.jpeg import decode_jpeg
from edge_app.evidence.ring import JITTER, JpegFrame
from edge_app.evidence.storage import write_atomic


@dataclass
class PendingClip:
    """A clip waiting for its post-roll: frames from ``start`` to ``end`` (capture clock)."""

    alert_id: str
    path: Path
    start: float
    end: float
    mtime: float  # wall time the alert's snapshot was stamped with
    frames: list[JpegFrame] = field(default_factory=list)
    dated: float | None = None  # the monotonic time that wall time stood for (None: a caller's own date)

    def add(self, frame: JpegFrame) -> None:
        if self.start <= frame.t <= self.end and (not self.frames or frame.t > self.frames[-1].t):
            self.frames.append(frame)


def slot_frames(frames: list[JpegFrame], fps: float) -> list[JpegFrame]:
    """The frame shown at each 1/fps slot from the first frame's time to the last's (newest frame so far)."""
    if not frames:
        return []
    interval = 1.0 / fps
    t0 = frames[0].t
    count = round((frames[-1].t - t0) / interval) + 1
    out: list[JpegFrame] = []
    i = 0
    for k in range(count):
        due = t0 + k * interval + JITTER * interval
        while i + 1 < len(frames) and frames[i + 1].t <= due:
            i += 1
        out.append(frames[i])
    return out


def write_clip(path: Path, frames: list[JpegFrame], fps: float, quality: int, mtime: float) -> int:
    """Write ``frames`` to ``path`` (MJPG .avi, crash-safe) at ``fps``; returns the number of frames written.

    Frames of another size than the first are scaled to it. The finished temp file is read back, so a
    write the disk silently cut short is an :class:`EvidenceError`, not a broken clip.
    """
    slots = slot_frames(frames, fps)
    if not slots:
        raise EvidenceError(f"no frames for clip {path}")
    size = (slots[0].width, slots[0].height)

    def fill(temp: Path) -> None:
        writer = cv2.VideoWriter(str(temp), cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter.fourcc(*"MJPG"), fps, size)
        if not writer.isOpened():
            raise EvidenceError(f"OpenCV cannot open an MJPG writer for {temp}")
        try:
            writer.set(cv2.VIDEOWRITER_PROP_QUALITY, quality)
            last: tuple[JpegFrame, np.ndarray] | None = None  # repeats are consecutive: decode each frame once
            for frame in slots:
                if last is None or last[0] is not frame:
                    image = decode_jpeg(frame.jpeg)
                    if (frame.width, frame.height) != size:
                        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
                    last = (frame, image)
                writer.write(last[1])
        finally:
            writer.release()
        check_clip(temp, len(slots), shown=path)

    try:
        write_atomic(path, fill, mtime)
    except cv2.error as exc:
        raise EvidenceError(f"OpenCV failed writing clip {path}: {exc}") from exc
    return len(slots)


def check_clip(path: Path, expected_frames: int, shown: Path | None = None) -> None:
    """Raise :class:`EvidenceError` (naming ``shown``) unless ``path`` indexes ``expected_frames`` frames."""
    capture = cv2.VideoCapture(str(path), cv2.CAP_OPENCV_MJPEG)
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else -1
    finally:
        capture.release()
    if count != expected_frames:
        size = path.stat().st_size if path.exists() else 0
        raise EvidenceError(
            f"clip {shown or path} is incomplete ({size} bytes, {max(count, 0)} of {expected_frames} frames indexed): "
            "the disk is probably full"
        )
