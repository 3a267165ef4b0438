"""The microphone source: its error path, and its conversion through a small fake PortAudio microphone."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from edge_app.capture import PyAudioConfig, SourceError, build_audio_source
from edge_app.capture.pyaudio_src import PyAudioSource


class FakeMicrophone:
    """A PortAudio input stream that records a 1 kHz tone at half scale, as 16-bit little-endian bytes."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.position = 0
        self.stopped = self.closed = False

    def read(self, frames: int, exception_on_overflow: bool = True) -> bytes:
        t = (self.position + np.arange(frames)) / self.rate
        self.position += frames
        return (np.sin(2 * np.pi * 1000 * t) * 16384).astype("<i2").tobytes()

    def stop_stream(self) -> None:
        self.stopped = True

    def close(self) -> None:
        self.closed = True


def fake_pyaudio(devices: int = 1) -> types.ModuleType:
    """A pyaudio module with one input device (index 0)."""
    module = types.ModuleType("pyaudio")
    module.paInt16 = 8  # type: ignore[attr-defined]
    opened: list[FakeMicrophone] = []

    class PyAudio:
        terminated = False

        def open(self, *, format: int, channels: int, rate: int, input: bool, input_device_index: int | None,
                 frames_per_buffer: int) -> FakeMicrophone:
            assert format == module.paInt16 and channels == 1 and input
            if input_device_index is not None and input_device_index >= devices:
                raise OSError(-9996, "Invalid input device (no default output device)")
            opened.append(FakeMicrophone(rate))
            return opened[-1]

        def terminate(self) -> None:
            PyAudio.terminated = True

    module.PyAudio = PyAudio  # type: ignore[attr-defined]
    module.opened = opened  # type: ignore[attr-defined]
    return module


def test_missing_pyaudio_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyaudio", None)
    source = build_audio_source({"type": "pyaudio"})
    assert source.live
    with pytest.raises(SourceError, match=r"^pyaudio is not installed: install the 'audio' extra .*portaudio19-dev"):
        source.open()


def test_chunks_from_a_microphone(monkeypatch: pytest.MonkeyPatch) -> None:
    module = fake_pyaudio()
    monkeypatch.setitem(sys.modules, "pyaudio", module)
    source = PyAudioSource(PyAudioConfig(rate=16000, chunk_ms=30))
    source.open()
    chunks = [source.read() for _ in range(3)]
    source.close()
    assert all(c is not None and len(c.samples) == 480 and c.rate == 16000 for c in chunks)
    samples = np.concatenate([c.samples for c in chunks if c])
    assert samples.dtype == np.float32 and samples.max() == pytest.approx(0.5, abs=1e-3)
    starts = [c.t for c in chunks if c]
    assert starts == sorted(starts)
    assert module.opened[0].stopped and module.opened[0].closed and module.PyAudio.terminated


def test_device_that_does_not_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyaudio", fake_pyaudio(devices=1))
    with pytest.raises(SourceError, match=r"microphone 5 could not be opened at 16000 Hz: .*Invalid input device"):
        build_audio_source(PyAudioConfig(device_index=5)).open()
