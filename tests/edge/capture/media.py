"""Real media files for the capture tests (MJPG .avi through cv2.VideoWriter, WAV through the wave module), and a
fake clock for paced playback."""

from __future__ import annotations

import struct
import wave
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

SIZE = (64, 48)  # width, height


def numbered_frame(i: int) -> np.ndarray:
    """An RGB frame whose grey level encodes ``i`` (survives MJPG compression to within a few levels)."""
    return np.full((SIZE[1], SIZE[0], 3), (i * 8) % 250, dtype=np.uint8)


def frame_number(image: np.ndarray) -> int:
    """Inverse of numbered_frame for i < 31."""
    return round(float(image.mean()) / 8)


def write_avi(path: Path, frames: Sequence[np.ndarray] | int, fps: float = 10.0) -> Path:
    """Write RGB frames (or that many numbered frames) as an MJPG .avi."""
    if isinstance(frames, int):
        frames = [numbered_frame(i) for i in range(frames)]
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened(), "OpenCV cannot write MJPG .avi here"
    for rgb in frames:
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def write_wav(path: Path, samples: np.ndarray, rate: int, sampwidth: int = 2) -> Path:
    """Write float samples (N,) or (N, channels) in -1..1 as PCM with the wave module (1, 2, 3 or 4 bytes)."""
    data = np.asarray(samples, dtype=np.float64)
    channels = 1 if data.ndim == 1 else data.shape[1]
    if sampwidth == 1:
        raw = np.clip(np.round(data * 128 + 128), 0, 255).astype(np.uint8).tobytes()
    else:
        full = float(1 << (8 * sampwidth - 1))
        ints = np.clip(np.round(data * full), -full, full - 1).astype("<i8")
        raw = ints.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :sampwidth].tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(sampwidth)
        w.setframerate(rate)
        w.writeframes(raw)
    return path


def write_float_wav(path: Path, samples: np.ndarray, rate: int, extensible: bool = False) -> Path:
    """Write float32 samples as an IEEE-float WAV (format 3, or WAVE_FORMAT_EXTENSIBLE with a float GUID)."""
    data = np.asarray(samples, dtype="<f4")
    channels = 1 if data.ndim == 1 else data.shape[1]
    block = 4 * channels
    if extensible:
        guid = struct.pack("<H", 3) + bytes.fromhex("000000001000800000aa00389b71")
        fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * block, block, 32, 22, 32, 0) + guid
    else:
        fmt = struct.pack("<HHIIHH", 3, channels, rate, rate * block, block, 32)
    body = data.tobytes()
    riff = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(body)) + body
    path.write_bytes(b"RIFF" + struct.pack("<I", len(riff)) + riff)
    return path


def tone(freq: float, seconds: float, rate: int, amplitude: float = 1.0) -> np.ndarray:
    """A sine wave."""
    t = np.arange(round(seconds * rate)) / rate
    return amplitude * np.sin(2 * np.pi * freq * t)


class FakeClock:
    """A wall clock that only moves when slept on (or advanced by the test)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
