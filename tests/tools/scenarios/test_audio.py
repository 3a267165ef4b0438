"""The sound track: espeak-ng speech at its level, loud real bangs, quiet room tone, 16 kHz int16 WAV."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from tests.need import needs_espeak
from tools.scenarios import audio
from tools.scenarios.spec import BangsSound, ScenarioSpec, SpeechSound


def windows(samples: np.ndarray, seconds: float = 0.1) -> np.ndarray:
    step = round(seconds * audio.RATE)
    return np.array([audio.rms_dbfs(samples[i : i + step]) for i in range(0, samples.size - step + 1, step)])


@needs_espeak
def test_speech_fills_its_interval_at_its_level() -> None:
    sound = SpeechSound(type="speech", start=2.0, end=10.0, text="Is the answer to question four the second one?")
    track = audio.speech_track(sound)
    assert track.size == 8 * audio.RATE
    assert audio.rms_dbfs(track) == pytest.approx(sound.level_dbfs, abs=0.5)
    levels = windows(track, 1.0)
    assert levels.min() > -45, "speech all through the interval, not one utterance and silence"
    assert windows(track).max() < -10, "ordinary speech is not loud audio"


def test_bangs_are_loud_in_nearly_every_window() -> None:
    track = audio.bangs_track(BangsSound(type="bangs", start=0.0, end=4.0, level_dbfs=-6.0))
    levels = windows(track)
    assert track.size == 4 * audio.RATE
    assert (levels >= -10).mean() >= 0.9 and np.abs(track).max() < 1.0


def test_espeak_missing_names_the_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(audio.SpeechUnavailable, match=r"apt-get install -y --no-install-recommends espeak-ng"):
        audio.speak("hello", "en-us")


def test_a_silent_scenario_is_room_tone_and_the_wav_round_trips(tmp_path: Path) -> None:
    spec = ScenarioSpec.model_validate({
        "name": "quiet", "description": "x", "view": "close", "set": "tuning", "duration": 6.0,
        "enrolled": "franck_02045.jpg",
        "calibration_seconds": 5.0, "segments": [{"start": 0.0, "end": 6.0, "candidate": "franck_seated"}]})
    track = audio.render_audio(spec)
    assert track.size == 6 * audio.RATE
    assert audio.rms_dbfs(track) == pytest.approx(audio.ROOM_TONE_DBFS, abs=0.5)
    path = tmp_path / "audio.wav"
    audio.write_wav(path, track)
    back, rate = audio.read_wav(path)
    assert rate == audio.RATE and back.size == track.size
    assert np.abs(back - track).max() < 2 / 32768
    with wave.open(str(path)) as handle:
        assert (handle.getnchannels(), handle.getsampwidth()) == (1, 2)
    assert [p.name for p in tmp_path.iterdir()] == ["audio.wav"], "no temp file left"


def test_resampling_keeps_duration_and_tone() -> None:
    rate = 22050
    t = np.arange(rate) / rate
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    out = audio.resample(tone, rate)
    assert out.size == audio.RATE
    spectrum = np.abs(np.fft.rfft(out))
    assert np.argmax(spectrum) == pytest.approx(440, abs=1)
