"""Keyword spotting with the real pocketsphinx model on espeak-ng speech made in the test."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_app.capture import WavAudioConfig, build_audio_source
from edge_app.speech.keywords import SpeechUnavailable, build_spotter, check_keyword, spot
from tests.need import needs_espeak

ESPEAK = shutil.which("espeak-ng")
THRESHOLDS = {"ten": 1e-20, "answer": 1e-20}
RATE = 16000


def speech(tmp_path: Path, text: str) -> tuple[np.ndarray, int]:
    """espeak-ng's WAV read through the real WAV source at 16 kHz, with room tone and a second before and after."""
    assert ESPEAK is not None
    path = tmp_path / "speech.wav"
    subprocess.run([ESPEAK, "-v", "en-us", "-s", "150", "-w", str(path), text], check=True, capture_output=True,
                   timeout=60)
    with build_audio_source(WavAudioConfig(path=path, chunk_ms=30)) as source:
        chunks = list(iter(source.read, None))
    x = np.concatenate([c.samples for c in chunks]).astype(np.float64)
    count = round(x.size * RATE / chunks[0].rate)  # band-limited resampling to the model's 16 kHz
    x = np.fft.irfft(np.fft.rfft(x)[: count // 2 + 1], count) * count / x.size
    pad = np.zeros(RATE)
    x = np.concatenate([pad, x, pad])
    return (x + np.random.default_rng(0).normal(0, 10 ** (-62 / 20), x.size)).astype(np.float32), RATE


@needs_espeak
@pytest.mark.parametrize(("text", "expected"), [
    ("go forward ten meters", {"ten"}),
    ("I think ten is right", {"ten"}),
    ("please open your books at the beginning", set()),
    ("she walked home through the park yesterday", set()),
])
def test_spoken_keywords_are_found_and_others_are_not(tmp_path: Path, text: str, expected: set[str]) -> None:
    samples, rate = speech(tmp_path, text)
    found = spot(build_spotter(["ten", "answer"], THRESHOLDS), samples, rate)
    assert {k.word for k in found} == expected
    seconds = samples.size / rate
    assert all(1.0 - 0.1 <= k.t <= seconds - 1.0 for k in found), found  # within the speech, not the padding


@needs_espeak
def test_times_follow_the_stream_across_chunks_and_rates(tmp_path: Path) -> None:
    samples, rate = speech(tmp_path, "go forward ten meters")
    spotter = build_spotter(["ten"], THRESHOLDS)
    at_16k = spot(spotter, samples, rate)
    upsampled = np.interp(np.arange(samples.size * 3) / 3, np.arange(samples.size), samples).astype(np.float32)
    at_48k = spot(spotter, upsampled, rate * 3, chunk_ms=20)
    assert [k.word for k in at_16k] == [k.word for k in at_48k] == ["ten"]
    assert at_16k[0].t == pytest.approx(at_48k[0].t, abs=0.05)


@pytest.mark.parametrize(("word", "ok"), [
    ("answer", True), ("question four", True), ("don't", True), ("a", True),
    ("Answer", False), ("7", False), ("two  words", False), (" answer", False), ("one two three four five", False),
    ("", False),
])
def test_keyword_spelling(word: str, ok: bool) -> None:
    if ok:
        assert check_keyword(word) == word
    else:
        with pytest.raises(ValueError, match="lowercase words"):
            check_keyword(word)


def test_a_word_without_a_pronunciation_is_named() -> None:
    with pytest.raises(SpeechUnavailable, match=r"'zxqvw'.*dictionary"):
        build_spotter(["answer", "zxqvw"])


def test_an_empty_list_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one keyword"):
        build_spotter([])


def test_without_pocketsphinx_the_error_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pocketsphinx", None)  # what an environment without the package sees
    with pytest.raises(SpeechUnavailable, match=r"invigil\[speech\]"):
        build_spotter(["answer"])
