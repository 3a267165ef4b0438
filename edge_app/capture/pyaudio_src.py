"""A microphone through PyAudio (PortAudio), imported only when the source is opened.

Chunks are 16-bit mono at the configured rate, converted to float32; t is the time.monotonic() at which the
chunk started (its arrival minus its duration).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from edge_app.capture.base import AudioChunk, AudioSource, SourceError, register_audio_source
from edge_app.capture.config import PyAudioConfig

NOT_INSTALLED = ("pyaudio is not installed: install the 'audio' extra (pip install '.[audio]'; it needs "
                 "PortAudio: apt-get install portaudio19-dev)")


@register_audio_source
class PyAudioSource(AudioSource):
    """Microphone input; overflows (a slow reader) lose audio rather than raise."""

    type = "pyaudio"

    def __init__(self, config: PyAudioConfig) -> None:
        self.config = config
        self.label = "default microphone" if config.device_index is None else f"microphone {config.device_index}"
        self.frames_per_chunk = max(1, round(config.rate * config.chunk_ms / 1000))
        self._pa: Any = None
        self._stream: Any = None

    @property
    def live(self) -> bool:
        return True

    @property
    def rate(self) -> int | None:
        return self.config.rate

    def open(self) -> None:
        try:
            import pyaudio
        except ImportError as exc:
            raise SourceError(NOT_INSTALLED) from exc
        self.close()
        pa = pyaudio.PyAudio()
        try:
            self._stream = pa.open(format=pyaudio.paInt16, channels=1, rate=self.config.rate, input=True,
                                   input_device_index=self.config.device_index,
                                   frames_per_buffer=self.frames_per_chunk)
        except Exception as exc:  # PortAudio reports a missing device or bad rate as OSError or ValueError
            pa.terminate()
            raise SourceError(f"{self.label} could not be opened at {self.config.rate} Hz: {exc}") from exc
        self._pa = pa

    def read(self) -> AudioChunk | None:
        if self._stream is None:
            raise SourceError(f"{self.label}: read before open()")
        try:
            raw = self._stream.read(self.frames_per_chunk, exception_on_overflow=False)
        except Exception as exc:
            raise SourceError(f"{self.label} read failed: {exc}") from exc
        arrived = time.monotonic()
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
        return AudioChunk(samples=samples, rate=self.config.rate, t=arrived - len(samples) / self.config.rate)

    def close(self) -> None:
        stream, self._stream = self._stream, None
        pa, self._pa = self._pa, None
        try:
            if stream is not None:
                stream.stop_stream()
                stream.close()
        finally:
            if pa is not None:
                pa.terminate()
