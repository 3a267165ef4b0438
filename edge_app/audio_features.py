"""Audio level and voice activity, computed from chunks of float mono samples (no I/O, no clock reads).

``dbfs`` is the RMS level in dB relative to a full-scale square wave, so a full-scale sine reads -3.01 dBFS.

``VoiceActivityDetector`` scores each chunk on five cues and smooths the result over time:
  level      energy above an adaptive noise floor (and above an absolute minimum);
  band       share of the energy in the speech band (300-3400 Hz): rejects hum and hiss;
  flatness   spectral flatness inside the band: voiced speech is harmonic, white noise and clicks are flat;
  peak       share of the band's energy in its strongest peak: a pure tone puts nearly all of it there;
  impulse    share of the chunk's energy in its loudest 4 ms: a key click is a few milliseconds long.
Voice must persist for ``onset_ms`` to switch on and stay absent for ``hangover_ms`` to switch off, which
bridges the pauses and fricatives inside speech and ignores isolated clicks.

It was measured against WebRTC's VAD (``tools/bench/speech.py``, ``make bench``) on real recordings: about
the same speech recall, and far fewer chunks called voice on real bangs, knocks and music, so it stays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edge_app.capture.base import AudioChunk

DBFS_FLOOR = -120.0
SPEECH_BAND = (300.0, 3400.0)
_IMPULSE_MS = 4.0


class VoiceGate:
    """Voice on after ``onset_ms`` of voiced chunks in a row, off after ``hangover_ms`` of unvoiced ones."""

    def __init__(self, onset_ms: float, hangover_ms: float) -> None:
        self.onset_ms, self.hangover_ms = onset_ms, hangover_ms
        self.active = False
        self._voiced_s = self._unvoiced_s = 0.0

    def update(self, voiced: bool, seconds: float) -> bool:
        if voiced:
            self._voiced_s, self._unvoiced_s = self._voiced_s + seconds, 0.0
        else:
            self._voiced_s, self._unvoiced_s = 0.0, self._unvoiced_s + seconds
        if not self.active and voiced and self._voiced_s * 1000 >= self.onset_ms - 1e-6:
            self.active = True
        elif self.active and not voiced and self._unvoiced_s * 1000 >= self.hangover_ms - 1e-6:
            self.active = False
        return self.active


def dbfs(samples: np.ndarray) -> float:
    """RMS level in dBFS (full-scale sine = -3.01); silence and empty input give DBFS_FLOOR (-120)."""
    x = np.asarray(samples, dtype=np.float64).ravel()
    if x.size == 0:
        return DBFS_FLOOR
    rms = math.sqrt(float(np.mean(x * x)))
    if not math.isfinite(rms):
        raise ValueError("dbfs: samples hold NaN or infinity")
    return max(DBFS_FLOOR, 20.0 * math.log10(rms)) if rms > 0 else DBFS_FLOOR


def pcm16(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Float samples in -1..1 as int16 at ``target`` Hz (linear interpolation when the rates differ)."""
    x = np.asarray(samples, dtype=np.float64).ravel()
    if rate != target and x.size:
        count = max(1, round(x.size * target / rate))
        x = np.interp(np.arange(count) * (rate / target), np.arange(x.size), x)
    return (np.clip(x, -1.0, 1.0) * 32767.0).round().astype("<i2")


@dataclass(frozen=True)
class ChunkFeatures:
    """The cues one chunk gives the detector."""

    dbfs: float
    band_ratio: float  # speech-band energy / total energy, 0..1
    flatness: float  # geometric / arithmetic mean of the band's power spectrum, 0 (tonal) .. ~0.56 (white)
    peak_share: float  # band energy within +-2 bins of its strongest bin, 0..1
    impulse_share: float  # energy in the loudest 4 ms window / total, 0..1


def chunk_features(samples: np.ndarray, rate: int) -> ChunkFeatures:
    """Spectral and temporal cues of one chunk (a Hann-windowed FFT of the whole chunk)."""
    x = np.asarray(samples, dtype=np.float64).ravel()
    level = dbfs(x)
    if x.size < 16 or level <= DBFS_FLOOR:
        return ChunkFeatures(level, 0.0, 1.0, 1.0, 1.0)
    x = x - x.mean()
    power = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
    freqs = np.fft.rfftfreq(x.size, 1.0 / rate)
    total = float(power[1:].sum()) + 1e-20
    band = power[(freqs >= SPEECH_BAND[0]) & (freqs <= SPEECH_BAND[1])]
    if band.size < 5:
        return ChunkFeatures(level, 0.0, 1.0, 1.0, 1.0)
    band_energy = float(band.sum()) + 1e-20
    flatness = float(np.exp(np.mean(np.log(band + 1e-20))) / (band_energy / band.size))
    peak = int(np.argmax(band))
    peak_share = float(band[max(0, peak - 2) : peak + 3].sum()) / band_energy
    window = max(1, round(rate * _IMPULSE_MS / 1000))
    energy = np.convolve(x * x, np.ones(window), mode="valid") if x.size > window else np.array([np.sum(x * x)])
    impulse_share = float(energy.max()) / (float(np.sum(x * x)) + 1e-20)
    return ChunkFeatures(level, band_energy / total, flatness, peak_share, impulse_share)


class VadConfig(BaseModel):
    """Thresholds of the voice activity detector."""

    model_config = ConfigDict(extra="forbid")

    min_dbfs: float = Field(default=-55.0, ge=-100, le=0, description="quieter chunks are never voice")
    snr_db: float = Field(default=8.0, ge=0, le=40, description="dB above the noise floor a voice chunk needs")
    min_band_ratio: float = Field(default=0.15, gt=0, lt=1, description="share of energy in 300-3400 Hz voice needs")
    max_flatness: float = Field(default=0.35, gt=0, lt=1, description="flatter (noise-like) spectra are not voice")
    max_peak_share: float = Field(default=0.95, gt=0, lt=1, description="more energy in one peak is a tone, not voice")
    max_impulse_share: float = Field(default=0.8, gt=0, lt=1, description="more energy in 4 ms is a click, not voice")
    threshold: float = Field(default=0.5, gt=0, lt=1, description="chunk probability that counts as voiced")
    onset_ms: float = Field(default=90.0, ge=0, le=2000, description="voiced time in a row that switches voice on")
    hangover_ms: float = Field(default=300.0, ge=0, le=5000, description="unvoiced time in a row that switches "
                               "voice off")
    floor_rise_db_per_s: float = Field(default=2.0, gt=0, le=60, description="how fast the noise floor follows a "
                                       "louder background")
    initial_floor_dbfs: float = Field(default=-70.0, ge=-120, le=0, description="noise floor before any audio")


@dataclass(frozen=True)
class VoiceState:
    """The detector's verdict after a chunk."""

    active: bool  # voice on, after onset and hangover
    probability: float  # this chunk's voice probability, 0..1
    dbfs: float  # this chunk's level


def _soft_above(value: float, threshold: float, width: float) -> float:
    """Logistic membership: 0.5 at threshold, about 0.95 at threshold + 3 * width."""
    z = (value - threshold) / width
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


class VoiceActivityDetector:
    """Stateful voice detector: feed it consecutive chunks with ``update``."""

    def __init__(self, config: VadConfig | None = None) -> None:
        self.config = config or VadConfig()
        self.reset()

    def reset(self) -> None:
        """Forget the noise floor and the on/off state."""
        self.noise_floor = self.config.initial_floor_dbfs
        self.active = False
        self.gate = VoiceGate(self.config.onset_ms, self.config.hangover_ms)

    def probability(self, features: ChunkFeatures) -> float:
        """How much one chunk's cues look like voice, 0..1 (product of soft per-cue memberships)."""
        c = self.config
        p = _soft_above(features.dbfs, max(c.min_dbfs, self.noise_floor + c.snr_db), 1.5)
        p *= _soft_above(features.band_ratio, c.min_band_ratio, 0.03)
        p *= _soft_above(-features.flatness, -c.max_flatness, 0.03)
        p *= _soft_above(-features.peak_share, -c.max_peak_share, 0.01)
        p *= _soft_above(-features.impulse_share, -c.max_impulse_share, 0.03)
        return p

    def update(self, chunk: AudioChunk) -> VoiceState:
        """Score the next chunk, update the noise floor and the on/off state."""
        features = chunk_features(chunk.samples, chunk.rate)
        p = self.probability(features)
        seconds = chunk.duration
        voiced = p >= self.config.threshold
        self.active = self.gate.update(voiced, seconds)
        self._track_floor(features.dbfs, seconds, voiced)
        return VoiceState(active=self.active, probability=p, dbfs=features.dbfs)

    def _track_floor(self, level: float, seconds: float, voiced: bool) -> None:
        """Follow quieter chunks at once, louder unvoiced ones slowly; voiced chunks leave the floor alone."""
        if level < self.noise_floor:
            self.noise_floor = max(level, DBFS_FLOOR)
        elif not voiced:
            self.noise_floor = min(level, self.noise_floor + self.config.floor_rise_db_per_s * seconds)
