"""WAV sources on real files written with the wave module (and hand-built float/extensible headers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_app.capture import AudioChunk, AudioSource, SourceError, WavAudioConfig, build_audio_source, read_wav
from edge_app.capture.wav import WavAudioSource
from tests.edge.capture.media import FakeClock, tone, write_float_wav, write_wav


def read_all(source: AudioSource) -> list[AudioChunk]:
    chunks = []
    for _ in range(100_000):
        chunk = source.read()
        if chunk is None:
            return chunks
        chunks.append(chunk)
    raise AssertionError("source never ended")


@pytest.mark.parametrize("sampwidth, tolerance", [(1, 1 / 100), (2, 1e-4), (3, 1e-6), (4, 1e-7)])
def test_pcm_widths_decode_to_float(tmp_path: Path, sampwidth: int, tolerance: float) -> None:
    signal = tone(440, 0.1, 8000, amplitude=0.5)
    samples, rate = read_wav(write_wav(tmp_path / "a.wav", signal, 8000, sampwidth))
    assert rate == 8000 and samples.dtype == np.float32
    assert np.abs(samples - signal).max() < tolerance


def test_stereo_is_averaged_to_mono(tmp_path: Path) -> None:
    left, right = tone(300, 0.05, 16000, 0.6), np.full(800, 0.2)
    samples, _ = read_wav(write_wav(tmp_path / "s.wav", np.stack([left, right], axis=1), 16000))
    assert np.abs(samples - (left + right) / 2).max() < 1e-3


@pytest.mark.parametrize("extensible", [False, True])
def test_float_wav_including_extensible(tmp_path: Path, extensible: bool) -> None:
    signal = np.stack([tone(500, 0.05, 16000, 0.5), -tone(500, 0.05, 16000, 0.5)], axis=1)
    samples, rate = read_wav(write_float_wav(tmp_path / "f.wav", signal, 16000, extensible))
    assert rate == 16000 and np.abs(samples).max() < 1e-6  # the two channels cancel


def test_chunks_have_start_times_and_cover_the_file(tmp_path: Path) -> None:
    signal = tone(440, 1.0, 16000, 0.3)
    path = write_wav(tmp_path / "a.wav", np.concatenate([signal, signal[:100]]), 16000)
    with build_audio_source({"type": "wav", "path": str(path), "chunk_ms": 30}) as source:
        assert not source.live and source.rate == 16000
        chunks = read_all(source)
    assert [len(c.samples) for c in chunks[:-1]] == [480] * (len(chunks) - 1)
    assert sum(len(c.samples) for c in chunks) == 16100
    assert [c.t for c in chunks] == pytest.approx([i * 0.03 for i in range(len(chunks))])
    assert all(c.rate == 16000 and c.samples.dtype == np.float32 for c in chunks)


def test_realtime_delivers_each_chunk_when_recorded(tmp_path: Path) -> None:
    clock = FakeClock()
    path = write_wav(tmp_path / "a.wav", tone(440, 0.3, 16000, 0.3), 16000)
    source = WavAudioSource(WavAudioConfig(path=path, chunk_ms=100, realtime=True), clock=clock, sleep=clock.sleep)
    source.open()
    start = clock.now
    arrivals = []
    for _ in range(3):
        chunk = source.read()
        assert chunk is not None
        arrivals.append(round(clock.now - start, 9))
    assert arrivals == [0.1, 0.2, 0.3]  # a microphone hands over a chunk once it has been recorded
    assert source.read() is None
    source.close()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"audio file .*gone\.wav: not found"):
        build_audio_source(WavAudioConfig(path=tmp_path / "gone.wav")).open()


def test_not_a_wav(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(b"ID3\x03\x00 an mp3 pretending" + bytes(100))
    with pytest.raises(SourceError, match=r"x\.wav: not a WAV file \(expected 'RIFF\.\.\.\.WAVE'"):
        read_wav(path)


def test_truncated_data(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "t.wav", tone(440, 0.5, 16000, 0.5), 16000)
    path.write_bytes(path.read_bytes()[:-1001])
    expected = r"t\.wav: truncated: its data chunk declares 16000 bytes, the file holds 14999$"
    with pytest.raises(SourceError, match=expected):
        read_wav(path)


@pytest.mark.parametrize("cut, message", [
    (8, r"not a WAV file"),
    (30, r"truncated: its 'fmt ' chunk declares 16 bytes, the file holds 10"),
    (40, r"truncated or malformed: no 'data' chunk"),
])
def test_truncated_header(tmp_path: Path, cut: int, message: str) -> None:
    path = write_wav(tmp_path / "h.wav", tone(440, 0.1, 16000), 16000)
    path.write_bytes(path.read_bytes()[:cut])
    with pytest.raises(SourceError, match=r"h\.wav: " + message):
        read_wav(path)


def test_unsupported_format_is_named(tmp_path: Path) -> None:
    path = write_float_wav(tmp_path / "u.wav", np.zeros(10), 8000)
    data = bytearray(path.read_bytes())
    data[20:22] = (6).to_bytes(2, "little")  # A-law
    path.write_bytes(bytes(data))
    with pytest.raises(SourceError, match=r"u\.wav: unsupported sample format \(format tag 6, 32 bits\)"):
        read_wav(path)
