"""WAV files as audio sources: PCM 8/16/24/32-bit or float 32/64, any channel count, to float32 mono.

The RIFF header is parsed here rather than with the ``wave`` module, which on Python 3.11 rejects float
and WAVE_FORMAT_EXTENSIBLE files. A file that is not a WAV, or whose data is shorter than its header
says, gives a SourceError naming the file and what was expected.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from edge_app.capture.base import AudioChunk, AudioSource, SourceError, register_audio_source
from edge_app.capture.config import WavAudioConfig
from edge_app.capture.pacing import Clock, Pacer, Sleep

_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
_STREAMING_SIZE = 0xFFFFFFFF  # writers that cannot seek back leave the data size at its maximum


@dataclass(frozen=True)
class WavInfo:
    """Layout of a WAV file's samples."""

    rate: int
    channels: int
    bits: int
    is_float: bool
    data_offset: int  # byte offset of the first sample
    frames: int  # samples per channel

    @property
    def block_align(self) -> int:
        return self.channels * self.bits // 8


def read_wav_info(f: BinaryIO, name: str) -> WavInfo:
    """Parse the RIFF header of an open WAV file; ``name`` is how errors call the file."""
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise SourceError(f"audio file {name}: not a WAV file (expected 'RIFF....WAVE', found {head[:12]!r})")
    fmt: tuple[int, int, int, int] | None = None
    while True:
        chunk = f.read(8)
        if len(chunk) < 8:
            what = "no 'data' chunk" if fmt else "no 'fmt ' chunk"
            raise SourceError(f"audio file {name}: truncated or malformed: {what}")
        chunk_id, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if chunk_id == b"fmt ":
            body = f.read(size + (size & 1))
            if len(body) < size:
                raise SourceError(f"audio file {name}: truncated: its 'fmt ' chunk declares {size} bytes, "
                                  f"the file holds {len(body)}")
            fmt = _parse_fmt(body[:size], name)
        elif chunk_id == b"data":
            if fmt is None:
                raise SourceError(f"audio file {name}: malformed: 'data' chunk before the 'fmt ' chunk")
            return _info(f, name, fmt, size)
        else:
            f.seek(size + (size & 1), 1)


def _parse_fmt(body: bytes, name: str) -> tuple[int, int, int, int]:
    if len(body) < 16:
        raise SourceError(f"audio file {name}: malformed 'fmt ' chunk ({len(body)} bytes, expected at least 16)")
    tag, channels, rate, _, block_align, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == _EXTENSIBLE and len(body) >= 26:
        tag = struct.unpack("<H", body[24:26])[0]  # first two bytes of the sub-format GUID
    supported = (tag == _PCM and bits in (8, 16, 24, 32)) or (tag == _FLOAT and bits in (32, 64))
    if not supported:
        raise SourceError(f"audio file {name}: unsupported sample format (format tag {tag}, {bits} bits); "
                          "expected PCM 8/16/24/32-bit or float 32/64-bit")
    if channels < 1 or rate < 1 or block_align != channels * bits // 8:
        raise SourceError(f"audio file {name}: malformed 'fmt ' chunk ({channels} channels, {rate} Hz, "
                          f"block align {block_align})")
    return tag, channels, rate, bits


def _info(f: BinaryIO, name: str, fmt: tuple[int, int, int, int], size: int) -> WavInfo:
    tag, channels, rate, bits = fmt
    offset = f.tell()
    available = f.seek(0, 2) - offset
    f.seek(offset)
    if size == _STREAMING_SIZE:
        size = available
    elif size > available:
        raise SourceError(f"audio file {name}: truncated: its data chunk declares {size} bytes, "
                          f"the file holds {available}")
    block = channels * bits // 8
    if size % block:
        raise SourceError(f"audio file {name}: truncated: {size} data bytes is not a whole number of "
                          f"{block}-byte sample frames")
    return WavInfo(rate, channels, bits, tag == _FLOAT, offset, size // block)


def decode_samples(raw: bytes, info: WavInfo) -> np.ndarray:
    """Raw sample frames -> float32 mono in -1..1 (channels averaged)."""
    if info.is_float:
        data = np.frombuffer(raw, dtype="<f4" if info.bits == 32 else "<f8").astype(np.float32)
        data = np.clip(np.nan_to_num(data), -1.0, 1.0)
    elif info.bits == 8:
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif info.bits == 16:
        data = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif info.bits == 24:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        data = (np.where(value >= 1 << 23, value - (1 << 24), value) / float(1 << 23)).astype(np.float32)
    else:
        data = (np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
    if info.channels > 1:
        data = data.reshape(-1, info.channels).mean(axis=1, dtype=np.float32)
    return np.ascontiguousarray(data, dtype=np.float32)


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """A whole WAV file as float32 mono samples and its sample rate."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"audio file {path}: not found")
    with path.open("rb") as f:
        info = read_wav_info(f, str(path))
        return decode_samples(f.read(info.frames * info.block_align), info), info.rate


@register_audio_source
class WavAudioSource(AudioSource):
    """A WAV file in chunks of ``chunk_ms``; t is media time. Realtime: each chunk when it would be recorded."""

    type = "wav"

    def __init__(self, config: WavAudioConfig, clock: Clock = time.monotonic, sleep: Sleep = time.sleep,
                 pacer: Pacer | None = None) -> None:
        self.config = config
        self._pacer = pacer or Pacer(clock, sleep)
        self._file: BinaryIO | None = None
        self._info: WavInfo | None = None
        self._position = 0

    @property
    def live(self) -> bool:
        return False

    @property
    def rate(self) -> int | None:
        return self._info.rate if self._info else None

    @property
    def info(self) -> WavInfo | None:
        """Header of the open file."""
        return self._info

    def open(self) -> None:
        self.close()
        path = Path(self.config.path)
        if not path.is_file():
            raise SourceError(f"audio file {path}: not found")
        f = path.open("rb")
        try:
            self._info = read_wav_info(f, str(path))
        except BaseException:
            f.close()
            raise
        self._file = f
        self._position = 0

    def read(self) -> AudioChunk | None:
        if self._file is None or self._info is None:
            raise SourceError(f"audio file {self.config.path}: read before open()")
        info = self._info
        per_chunk = max(1, round(info.rate * self.config.chunk_ms / 1000))
        count = min(per_chunk, info.frames - self._position)
        if count <= 0:
            return None
        raw = self._file.read(count * info.block_align)
        if len(raw) < count * info.block_align:
            raise SourceError(f"audio file {self.config.path}: ended early at sample {self._position} "
                              f"of {info.frames} (file changed while read?)")
        start = self._position / info.rate
        self._position += count
        if self.config.realtime:
            self._pacer.wait_until(self._position / info.rate)
        return AudioChunk(samples=decode_samples(raw, info), rate=info.rate, t=start)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
