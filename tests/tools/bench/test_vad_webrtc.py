"""WebRTC's VAD (the bench's challenger to the unit's detector) on real espeak-ng speech and on silence."""

from __future__ import annotations

import numpy as np
import pytest

from edge_app.capture.base import AudioChunk
from tests.need import needs_espeak
from tools.bench.vad_webrtc import WebrtcVad


def states(x: np.ndarray, rate: int = 16000, chunk: int = 480) -> list[bool]:
    vad = WebrtcVad()
    return [vad.update(AudioChunk(x[i : i + chunk], rate, i / rate)).active for i in range(0, x.size - chunk, chunk)]


@needs_espeak
def test_voice_on_speech_and_off_in_silence() -> None:
    from tools.bench.speech_media import espeak, pad

    speech = espeak("Please keep your eyes on your own screen.")
    flags = states(pad(speech, seconds=1.0))
    assert not any(flags[:30])  # the second of room tone before
    assert np.mean(flags[34 : 34 + speech.size // 480 - 4]) > 0.8


@pytest.mark.parametrize("rate", [16000, 44100])
def test_silence_is_never_voice(rate: int) -> None:
    assert not any(states(np.zeros(3 * rate, np.float32), rate, rate * 30 // 1000))
