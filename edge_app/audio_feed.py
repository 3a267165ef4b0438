"""Audio features per analysed frame: loudest level and any voice since the previous frame.

A file played as fast as possible is pulled in step with the video's media time (deterministic); a
live microphone (or a file paced in real time) is read on its own thread into a bounded buffer.
"""

from __future__ import annotations

import threading
from collections import deque

from edge_app.audio_features import VoiceActivityDetector
from edge_app.capture.base import AudioChunk, AudioSource

MAX_BUFFERED = 400  # chunks (12 s at 30 ms): a stalled analysis drops the oldest audio, never grows


class AudioFeed:
    def __init__(self, source: AudioSource, realtime: bool) -> None:
        self.source, self.realtime = source, realtime
        self.vad = VoiceActivityDetector()
        self.buffer: deque[tuple[float, float, bool]] = deque(maxlen=MAX_BUFFERED)  # t_end, dbfs, voice
        self.lock = threading.Lock()
        self.ended = False
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending: AudioChunk | None = None

    def start(self) -> None:
        self.source.open()
        if self.realtime:
            self._thread = threading.Thread(target=self._read_live, name="invigil-audio", daemon=True)
            self._thread.start()

    def _features(self, chunk: AudioChunk) -> tuple[float, float, bool]:
        state = self.vad.update(chunk)
        return chunk.t + chunk.duration, state.dbfs, state.active

    def _read_live(self) -> None:
        try:
            while not self._stop.is_set():
                chunk = self.source.read()
                if chunk is None:
                    self.ended = True
                    return
                features = self._features(chunk)
                with self.lock:
                    self.buffer.append(features)
        except Exception as exc:  # reported by the loop, which carries on without audio
            self.error = exc

    def until(self, t: float) -> tuple[float | None, bool | None]:
        """(loudest dBFS, any voice) of the audio up to media time ``t`` not reported yet; (None, None) if none."""
        if not self.realtime:
            while not self.ended and self.error is None:
                if self._pending is None:
                    try:
                        self._pending = self.source.read()
                    except Exception as exc:
                        self.error = exc
                        break
                    if self._pending is None:
                        self.ended = True
                        break
                if self._pending.t > t:
                    break
                self.buffer.append(self._features(self._pending))
                self._pending = None
        with self.lock:
            taken = [item for item in self.buffer if item[0] <= t + 0.05] if not self.realtime else list(self.buffer)
            for _ in taken:
                self.buffer.popleft()
        if not taken:
            return None, None
        return max(item[1] for item in taken), any(item[2] for item in taken)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self.source.close()
