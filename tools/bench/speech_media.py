"""Real recordings for the speech bench, from pinned, sha256-checked registry packages, and espeak-ng speech.

Speech: five read-aloud LibriVox sentences with word alignments, five spoken card names and "go forward
ten meters", all from pocketsphinx's source package (its test data). Noise: pygame's example sounds
(a music loop and four effects, 8-bit 11 kHz). No registry package found holds recordings of typing, a fan or a
street; the bench adds synthetic pink noise and key clicks in their place and labels them synthetic.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tools.fetch import Package, extract
from tools.scenarios.sources import PYGAME, decode_wav

RATE = 16000
POCKETSPHINX_SRC = Package(
    "pypi", "pocketsphinx", "5.1.1", "pocketsphinx-5.1.1.tar.gz",
    "675778b309a22dfc9b7d37f7621976bba491d2a5f8c59696bd77fd6d07271355", "BSD-2-Clause (test recordings)",
)
_DATA = "pocketsphinx-5.1.1/test/data/"
LIBRIVOX = [f"librivox/sense_and_sensibility_01_austen_64kb-0{n}" for n in (870, 880, 890, 920, 930)]
# recording -> what is said (the transcripts shipped beside them)
SPOKEN = {
    "cards/001": "ten of clubs",
    "cards/002": "four queen of clubs",
    "cards/003": "seven of clubs",
    "cards/004": "five five",
    "cards/005": "eight of spades four of clubs seven of hearts",
    "goforward": "go forward ten meters",
}
NOISE = {"music: house loop": "house_lo.wav", "bang": "boom.wav",
         "car door": "car_door.wav", "punch": "punch.wav", "whoosh": "whiff.wav"}
INSTALL_ESPEAK = "apt-get update && apt-get install -y --no-install-recommends espeak-ng"


@dataclass(frozen=True)
class Recording:
    name: str
    samples: np.ndarray  # float32 mono at RATE
    speech: list[tuple[float, float]]  # (start, end) seconds of words, when aligned
    text: str = ""


def _wav(data: bytes) -> np.ndarray:
    samples, rate = decode_wav(io.BytesIO(data))
    x = samples.astype(np.float64)
    if rate != RATE:
        x = np.interp(np.arange(round(x.size * RATE / rate)) * (rate / RATE), np.arange(x.size), x)
    return x.astype(np.float32)


def speech_recordings() -> list[Recording]:
    """LibriVox sentences with their word intervals (silences excluded), from the pinned source package."""
    members = {f"{_DATA}{name}.{ext}": f"{Path(name).name}.{ext}" for name in LIBRIVOX for ext in ("wav", "json")}
    files = extract(POCKETSPHINX_SRC, members, "speech-media")
    out = []
    for name in LIBRIVOX:
        base = Path(name).name
        words = json.loads(files[f"{base}.json"].read_text())["w"]
        spans = [(w["b"], w["b"] + w["d"]) for w in words if not w["t"].startswith("<")]
        out.append(Recording(f"librivox {base[-4:]}", _wav(files[f"{base}.wav"].read_bytes()), spans,
                             json.loads(files[f"{base}.json"].read_text())["t"]))
    return out


def spoken_recordings() -> list[Recording]:
    """Short real utterances with numbers in them (card names, "go forward ten meters")."""
    members = {f"{_DATA}{name}.{'raw' if name == 'goforward' else 'wav'}": name.replace("/", "-") for name in SPOKEN}
    files = extract(POCKETSPHINX_SRC, members, "speech-media")
    out = []
    for name, text in SPOKEN.items():
        data = files[name.replace("/", "-")].read_bytes()
        x = np.frombuffer(data, "<i2").astype(np.float32) / 32768 if name == "goforward" else _wav(data)
        out.append(Recording(name, x, [], text))
    return out


def noise_recordings() -> list[Recording]:
    """pygame's example sounds, and synthetic stand-ins for what no package has (labelled synthetic)."""
    files = extract(PYGAME, {f"pygame/examples/data/{f}": f for f in NOISE.values()}, "speech-media")
    out = [Recording(label, _wav(files[f].read_bytes()), []) for label, f in NOISE.items()]
    rng = np.random.default_rng(0)
    white = rng.normal(0, 1, 10 * RATE)
    pink = np.fft.irfft(np.fft.rfft(white) / np.sqrt(np.arange(1, white.size // 2 + 2)), white.size)
    out.append(Recording("synthetic: fan (pink noise, -35 dBFS)", _level(pink, -35), []))
    clicks = np.zeros(10 * RATE)
    t = 0.05
    while t < 9.9:
        i = round(t * RATE)
        clicks[i : i + 192] += rng.normal(0, 1, 192) * np.exp(-np.arange(192) / 32)
        t += rng.uniform(0.06, 0.25)
    out.append(Recording("synthetic: typing (key clicks)", _level(clicks, -30), []))
    return out


def _level(x: np.ndarray, dbfs: float) -> np.ndarray:
    return (x * 10 ** (dbfs / 20) / np.sqrt(np.mean(x * x))).astype(np.float32)


def espeak(text: str, voice: str = "en-us") -> np.ndarray:
    """One espeak-ng utterance at RATE (RuntimeError with the install command when espeak-ng is missing)."""
    command = shutil.which("espeak-ng")
    if command is None:
        raise RuntimeError(f"espeak-ng is not installed; install it with: {INSTALL_ESPEAK}")
    done = subprocess.run([command, "-v", voice, "-s", "150", "--stdout", text], capture_output=True, check=True)
    return _wav(done.stdout)


def pad(x: np.ndarray, seconds: float = 0.5, seed: int = 1) -> np.ndarray:
    """``x`` with quiet room tone (-62 dBFS) before and after, and under it."""
    n = round(seconds * RATE)
    padded = np.concatenate([np.zeros(n, np.float32), x, np.zeros(n, np.float32)])
    return padded + np.random.default_rng(seed).normal(0, 10 ** (-62 / 20), padded.size).astype(np.float32)
