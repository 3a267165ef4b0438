"""WebRTC's voice activity detector (webrtcvad-wheels) behind the unit's detector interface: the challenger
``tools/bench/speech.py`` measures against the unit's heuristic (``edge_app.audio_features``).

WebRTC's VAD (Gaussian mixture models of speech and noise over six sub-bands) runs on 30 ms frames at
16 kHz, with the same onset and hangover as the unit's detector. On real recordings it found about as
much speech as the heuristic and called most real noise voice, so the unit does not use it.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edge_app.audio_features import VoiceGate, VoiceState, dbfs, pcm16
from edge_app.capture.base import AudioChunk

VAD_RATE = 16000  # rates webrtcvad takes are 8, 16, 32 and 48 kHz; everything is brought to 16 kHz
INSTALL_WEBRTCVAD = "pip install webrtcvad-wheels (pinned in pyproject.toml's dev extra)"


class WebrtcVadConfig(BaseModel):
    """Settings of the voice activity detector."""

    model_config = ConfigDict(extra="forbid")

    aggressiveness: int = Field(default=3, ge=0, le=3, description="WebRTC VAD mode: 0 calls most sound voice, "
                                "3 least")
    frame_ms: Literal[10, 20, 30] = Field(default=30, description="WebRTC VAD frame in milliseconds")
    min_dbfs: float = Field(default=-55.0, ge=-100, le=0, description="quieter chunks are never voice")
    threshold: float = Field(default=0.5, gt=0, le=1, description="share of a chunk's frames that must be voice")
    onset_ms: float = Field(default=90.0, ge=0, le=2000, description="voiced time in a row that switches voice on")
    hangover_ms: float = Field(default=300.0, ge=0, le=5000, description="unvoiced time in a row that switches "
                               "voice off")


class WebrtcVad:
    """Stateful voice detector: feed it consecutive chunks with ``update``."""

    def __init__(self, config: WebrtcVadConfig | None = None) -> None:
        self.config = config or WebrtcVadConfig()
        try:
            import webrtcvad
        except ImportError as exc:
            raise RuntimeError(f"voice activity needs webrtcvad ({exc}); install it with: "
                               f"{INSTALL_WEBRTCVAD}") from None
        self._vad = webrtcvad.Vad(self.config.aggressiveness)
        self._frame = VAD_RATE * self.config.frame_ms // 1000
        self.reset()

    def reset(self) -> None:
        """Forget the on/off state and any partial frame."""
        self.active = False
        self.gate = VoiceGate(self.config.onset_ms, self.config.hangover_ms)
        self._pending = np.zeros(0, "<i2")
        self._last = False  # the last whole frame's verdict (a chunk shorter than a frame keeps it)

    def probability(self, chunk: AudioChunk) -> float:
        """Share of the whole frames completed by this chunk that WebRTC calls voice."""
        pcm = np.concatenate([self._pending, pcm16(chunk.samples, chunk.rate, VAD_RATE)])
        whole = pcm.size - pcm.size % self._frame
        self._pending = pcm[whole:]
        verdicts = [self._vad.is_speech(pcm[i : i + self._frame].tobytes(), VAD_RATE)
                    for i in range(0, whole, self._frame)]
        if verdicts:
            self._last = verdicts[-1]
            return sum(verdicts) / len(verdicts)
        return 1.0 if self._last else 0.0

    def update(self, chunk: AudioChunk) -> VoiceState:
        """Score the next chunk and update the on/off state."""
        level = dbfs(chunk.samples)
        p = self.probability(chunk)
        if level < self.config.min_dbfs:
            p = 0.0
        self.active = self.gate.update(p >= self.config.threshold, chunk.duration)
        return VoiceState(active=self.active, probability=p, dbfs=level)
