"""The scenario's sound: quiet room tone, espeak-ng speech and real recorded bangs, as 16 kHz mono int16.

espeak-ng is a Debian package (``tools/system_packages.sh`` installs it); without it speech cannot be
rendered and :class:`SpeechUnavailable` says how to install it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from edge_app.atomic import write_atomic
from tools.scenarios import sources
from tools.scenarios.spec import BangsSound, ScenarioSpec, SpeechSound

RATE = 16000
ROOM_TONE_DBFS = -62.0
INSTALL_ESPEAK = "apt-get update && apt-get install -y --no-install-recommends espeak-ng"
BANGS = ("boom.wav", "car_door.wav", "boom.wav", "car_door.wav", "car_door.wav")
BANG_EVERY = 0.15  # seconds between bang onsets: a continuous crash, every 100 ms window above -10 dBFS


class SpeechUnavailable(RuntimeError):
    """espeak-ng is not installed."""


def espeak_command() -> str:
    found = shutil.which("espeak-ng")
    if found is None:
        raise SpeechUnavailable(f"espeak-ng is not installed; speech needs it. Install it with: sudo sh -c "
                                f"'{INSTALL_ESPEAK}' (or run tools/system_packages.sh as root)")
    return found


def espeak_version() -> str:
    done = subprocess.run([espeak_command(), "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip()


def rms_dbfs(samples: np.ndarray) -> float:
    """RMS level in dBFS (full scale = 1.0); -120 for silence."""
    x = np.asarray(samples, dtype=np.float64)
    level = float(np.sqrt(np.mean(x * x))) if x.size else 0.0
    return 20 * np.log10(level) if level > 1e-6 else -120.0


def resample(samples: np.ndarray, rate: int, target: int = RATE) -> np.ndarray:
    """Band-limited resampling (FFT) of a short clip."""
    if rate == target:
        return samples.astype(np.float32)
    count = round(len(samples) * target / rate)
    spectrum = np.fft.rfft(samples.astype(np.float64))
    keep = count // 2 + 1
    spectrum = spectrum[:keep] if keep <= spectrum.size else np.pad(spectrum, (0, keep - spectrum.size))
    return (np.fft.irfft(spectrum, count) * count / len(samples)).astype(np.float32)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as handle:
        if handle.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16-bit samples, got {8 * handle.getsampwidth()}-bit")
        rate, channels = handle.getframerate(), handle.getnchannels()
        data = np.frombuffer(handle.readframes(handle.getnframes()), "<i2").astype(np.float32) / 32768.0
    return data.reshape(-1, channels).mean(axis=1), rate


def speak(text: str, voice: str) -> np.ndarray:
    """One utterance from espeak-ng at RATE, silence trimmed."""
    command = espeak_command()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.wav"
        done = subprocess.run([command, "-v", voice, "-s", "150", "-w", str(out), text],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0 or not out.is_file():
            raise SpeechUnavailable(f"espeak-ng failed for voice {voice!r}: {done.stderr.strip()[:300]}")
        samples, rate = read_wav(out)
    voiced = np.flatnonzero(np.abs(samples) > 0.01)
    if voiced.size == 0:
        raise SpeechUnavailable(f"espeak-ng produced silence for {text!r}")
    return resample(samples[voiced[0] : voiced[-1] + 1], rate)


def fade(clip: np.ndarray, seconds: float = 0.01) -> np.ndarray:
    n = min(len(clip) // 2, round(seconds * RATE))
    if n > 0:
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        clip[:n] *= ramp
        clip[-n:] *= ramp[::-1]
    return clip


def fill(clips: list[np.ndarray], seconds: float, gap: float = 0.0, every: float | None = None) -> np.ndarray:
    """Clips one after another (cycling), cut to exactly ``seconds``: ``gap`` seconds of silence between
    them, or (``every``) a new clip every ``every`` seconds, mixed over the tail of the previous one."""
    out = np.zeros(round(seconds * RATE), np.float32)
    at, i = 0, 0
    while at < out.size:
        clip = clips[i % len(clips)]
        take = min(clip.size, out.size - at)
        out[at : at + take] += fade(clip[:take].copy())
        at += round(every * RATE) if every is not None else take + round(gap * RATE)
        i += 1
    return out


def set_level(clip: np.ndarray, dbfs: float, limit: float = 0.95) -> np.ndarray:
    """Scale ``clip`` to an RMS of ``dbfs``; loud clips go through a soft limiter so peaks stay below ``limit``."""
    out = clip
    for _ in range(8):
        out = out * 10 ** ((dbfs - rms_dbfs(out)) / 20)
        if np.abs(out).max() <= limit:
            break
        out = (limit * np.tanh(out / limit)).astype(np.float32)
    return out.astype(np.float32)


def speech_track(sound: SpeechSound) -> np.ndarray:
    return set_level(fill([speak(sound.text, sound.voice)], sound.end - sound.start, gap=0.35), sound.level_dbfs)


def bangs_track(sound: BangsSound) -> np.ndarray:
    clips = []
    for name in BANGS:
        samples, rate = sources.sound(name)
        clips.append(resample(samples - samples.mean(), rate))
    return set_level(fill(clips, sound.end - sound.start, every=BANG_EVERY), sound.level_dbfs)


def room_tone(seconds: float, seed: int) -> np.ndarray:
    """Quiet, slightly low-heavy background noise (a room with a computer fan)."""
    rng = np.random.default_rng(seed + 7919)
    white = rng.standard_normal(round(seconds * RATE)).astype(np.float32)
    low = np.convolve(white, np.ones(8, np.float32) / 8, mode="same")
    return set_level(0.7 * low + 0.3 * white, ROOM_TONE_DBFS)


def render_audio(spec: ScenarioSpec) -> np.ndarray:
    """The whole soundtrack, float32 in [-1, 1], exactly ``duration`` seconds long."""
    track = room_tone(spec.duration, spec.seed)
    for sound in spec.sounds:
        part = speech_track(sound) if isinstance(sound, SpeechSound) else bangs_track(sound)
        at = round(sound.start * RATE)
        track[at : at + part.size] += part[: track.size - at]
    return np.clip(track, -1.0, 1.0)


def write_wav(path: Path, samples: np.ndarray) -> None:
    """16 kHz mono int16 WAV, written to a temp file in the same folder, fsynced and moved into place."""
    data = np.round(np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()

    def fill(tmp: Path) -> None:
        with wave.open(str(tmp), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes(data)

    write_atomic(path, fill, mode=0o644)
