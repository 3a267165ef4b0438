"""Audio level and voice activity on real synthesized speech (espeak-ng) and on numpy noise, tones and clicks."""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from edge_app.audio_features import DBFS_FLOOR, VadConfig, VoiceActivityDetector, chunk_features, dbfs, pcm16
from edge_app.capture import AudioChunk, WavAudioConfig, build_audio_source
from tests.edge.capture.media import tone, write_wav
from tests.need import needs_espeak

ESPEAK = shutil.which("espeak-ng")
SENTENCE = ("Please keep your eyes on your own screen. The examination finishes in twenty minutes, "
            "and no phones are allowed on the desk.")
SPEECH_DBFS = -45.0  # chunks of the speech file louder than this are speech (quieter: pauses and closures)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.mark.parametrize("samples, expected", [
    (tone(1000, 1, 16000), -3.0103),  # full-scale sine
    (tone(1000, 1, 16000, 0.5), -9.0309),
    (tone(997, 1, 44100, 0.1), -23.0103),
    (np.ones(480), 0.0),  # full-scale square / DC
    (np.full(480, -0.1), -20.0),
    (rng().normal(0, 10 ** (-30 / 20), 160_000), -30.0),  # white noise, RMS -30 dBFS
    (np.zeros(480), DBFS_FLOOR),
    (np.array([]), DBFS_FLOOR),
    (tone(1000, 1, 16000, 1e-7), DBFS_FLOOR),  # below the floor
])
def test_dbfs(samples: np.ndarray, expected: float) -> None:
    assert dbfs(samples) == pytest.approx(expected, abs=0.02)


def test_dbfs_rejects_nan() -> None:
    with pytest.raises(ValueError, match="NaN or infinity"):
        dbfs(np.array([0.1, math.nan]))


def clicks(seconds: float, rate: int, seed: int = 3) -> np.ndarray:
    """Typing: 4-16 key clicks a second, each a 2 ms-decay burst of noise or a damped 1.5-4 kHz ring."""
    r = rng(seed)
    out = np.zeros(round(seconds * rate))
    t = 0.05
    length = round(0.012 * rate)
    k = np.arange(length)
    envelope = np.exp(-k / (0.002 * rate))
    while t < seconds - 0.02:
        start = round(t * rate)
        noisy = r.random() < 0.5
        burst = r.normal(0, 1, length) if noisy else np.sin(2 * np.pi * r.uniform(1500, 4000) * k / rate)
        out[start : start + length] += 0.3 * envelope * burst
        t += r.uniform(0.06, 0.25)
    return out


NOT_VOICE = {
    "silence": lambda rate: np.zeros(5 * rate),
    "white noise -30 dBFS": lambda rate: rng(1).normal(0, 10 ** (-30 / 20), 5 * rate),
    "white noise -60 dBFS": lambda rate: rng(2).normal(0, 10 ** (-60 / 20), 5 * rate),
    "1 kHz tone full scale": lambda rate: tone(1000, 5, rate),
    "1 kHz tone -30 dBFS": lambda rate: tone(1000, 5, rate, 10 ** (-27 / 20)),
    "440 Hz tone": lambda rate: tone(440, 5, rate, 0.2),
    "50 Hz hum": lambda rate: tone(50, 5, rate, 0.3) + tone(150, 5, rate, 0.1),
    "typing clicks": lambda rate: clicks(5, rate),
}


def run_vad(samples: np.ndarray, rate: int, chunk_ms: int = 30) -> list[tuple[bool, float]]:
    """(active, chunk dBFS) per chunk."""
    vad = VoiceActivityDetector()
    n = round(rate * chunk_ms / 1000)
    out = []
    for i in range(0, len(samples) - n + 1, n):
        chunk = AudioChunk(samples[i : i + n].astype(np.float32), rate, i / rate)
        out.append((vad.update(chunk).active, chunk_features(chunk.samples, rate).dbfs))
    return out


@pytest.mark.parametrize("rate", [16000, 48000])
@pytest.mark.parametrize("name", list(NOT_VOICE))
def test_no_voice_on_noise_tones_and_clicks(name: str, rate: int) -> None:
    states = run_vad(NOT_VOICE[name](rate), rate)
    assert not any(active for active, _ in states), f"{name}: voice on in {sum(a for a, _ in states)} chunks"


def test_cues_separate_tones_noise_and_clicks() -> None:
    rate = 16000
    pure = chunk_features(tone(1234.5, 0.03, rate, 0.5), rate)
    noise = chunk_features(rng().normal(0, 0.1, 480), rate)
    click = chunk_features(clicks(0.2, rate)[800:1280], rate)
    assert pure.peak_share > 0.99 and pure.flatness < 0.01 and pure.band_ratio > 0.99
    assert noise.flatness > 0.45
    assert click.impulse_share > 0.8


def speak(tmp_path: Path, text: str, *args: str) -> Path:
    assert ESPEAK is not None
    path = tmp_path / "speech.wav"
    subprocess.run([ESPEAK, *args, "-w", str(path), text], check=True, capture_output=True, timeout=60)
    return path


def padded_speech(path: Path) -> tuple[np.ndarray, int]:
    """The espeak file read through the real WAV source, with a second of silence before and after."""
    with build_audio_source(WavAudioConfig(path=path, chunk_ms=30)) as source:
        chunks = [c for c in iter(source.read, None)]
    rate = chunks[0].rate
    speech = np.concatenate([c.samples for c in chunks])
    pad = np.zeros(rate, np.float32)
    return np.concatenate([pad, speech, pad]), rate


@needs_espeak
@pytest.mark.parametrize("voice", [[], ["-v", "en+f3"], ["-v", "de", "-s", "200"]])
def test_voice_on_speech_and_off_around_it(tmp_path: Path, voice: list[str]) -> None:
    samples, rate = padded_speech(speak(tmp_path, SENTENCE, *voice))
    states = run_vad(samples, rate)
    speech = [active for active, level in states if level > SPEECH_DBFS]
    assert len(speech) > 50
    assert np.mean(speech) >= 0.9, f"voice on in {np.mean(speech):.2f} of speech chunks"
    lead = round(1.0 / 0.03) - 1
    assert not any(active for active, _ in states[:lead])  # silence before
    assert not any(active for active, _ in states[-lead // 2 :])  # silence after, once the hangover is over


@needs_espeak
def test_voice_on_speech_in_background_noise(tmp_path: Path) -> None:
    samples, rate = padded_speech(speak(tmp_path, SENTENCE))
    clean = run_vad(samples, rate)
    noisy = run_vad(samples + rng(5).normal(0, 10 ** (-40 / 20), len(samples)).astype(np.float32), rate)
    speech = [active for (active, _), (_, level) in zip(noisy, clean, strict=True) if level > SPEECH_DBFS]
    assert np.mean(speech) >= 0.8
    assert not any(active for active, _ in noisy[:30])


def test_hangover_bridges_short_pauses_only(tmp_path: Path) -> None:
    """A harmonic 'vowel' (voiced, 150 Hz harmonics) with a 150 ms gap stays on; a 600 ms gap switches off."""
    rate = 16000
    vowel = sum(tone(150 * h, 0.4, rate, 0.1 / h) for h in range(1, 20))
    vowel *= np.hanning(len(vowel)) ** 0.2
    samples = np.concatenate([vowel, np.zeros(round(0.15 * rate)), vowel, np.zeros(round(0.6 * rate)), vowel])
    path = write_wav(tmp_path / "vowels.wav", samples, rate)
    with build_audio_source(WavAudioConfig(path=path, chunk_ms=30)) as source:
        vad = VoiceActivityDetector()
        states = [(c.t, vad.update(c).active) for c in iter(source.read, None)]
    on = lambda t0, t1: [a for t, a in states if t0 <= t < t1]  # noqa: E731
    assert all(on(0.15, 0.4)) and all(on(0.4, 0.55))  # on within the onset, still on through the short gap
    assert not any(on(0.55 + 0.4 + 0.35, 0.55 + 0.4 + 0.6))  # off once the long gap exceeds the hangover
    assert all(on(1.55 + 0.15, 1.95))


def test_noise_floor_follows_a_steady_background() -> None:
    rate = 16000
    vad = VoiceActivityDetector()
    noise = rng(7).normal(0, 10 ** (-30 / 20), 25 * rate).astype(np.float32)
    for i in range(0, len(noise), 480):
        vad.update(AudioChunk(noise[i : i + 480], rate, i / rate))
    assert -31.5 < vad.noise_floor < -29.0
    vad.reset()
    assert vad.noise_floor == VadConfig().initial_floor_dbfs and not vad.active


def test_config_names_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="hangover_msec"):
        VadConfig(hangover_msec=100)  # type: ignore[call-arg]


@pytest.mark.parametrize(("samples", "rate", "target", "expected"), [
    (np.array([0.0, 0.5, -0.5, 1.0, -1.0]), 16000, 16000, [0, 16384, -16384, 32767, -32767]),
    (np.array([2.0, -3.0]), 16000, 16000, [32767, -32767]),  # clipped
    (np.array([0.0, 0.3, 0.6, 0.9]), 32000, 16000, [0, 19660]),  # every other sample
    (np.array([0.0, 0.6]), 8000, 16000, [0, 9830, 19660, 19660]),  # interpolated, the last one held
    (np.array([]), 48000, 16000, []),
])
def test_pcm16(samples: np.ndarray, rate: int, target: int, expected: list[int]) -> None:
    out = pcm16(samples, rate, target)
    assert out.dtype == np.dtype("<i2") and out.tolist() == expected
