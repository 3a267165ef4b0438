"""Audio features per analysed frame: loudest level, any voice and the keywords heard since the previous frame.

A file played as fast as possible is pulled in step with the video's media time (deterministic); a
live microphone (or a file paced in real time) is read on its own thread into a bounded buffer. Keyword
spotting is optional (a :class:`~edge_app.speech.keywords.KeywordSpotter`, swappable with the exam's list).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import TYPE_CHECKING

from edge_app.audio_features import VadConfig, VoiceActivityDetector
from edge_app.capture.base import AudioChunk, AudioSource
from edge_app.rules.observation import SpokenKeyword

if TYPE_CHECKING:
    from edge_app.speech.keywords import KeywordSpotter

log = logging.getLogger(__name__)
MAX_BUFFERED = 400  # chunks (12 s at 30 ms): a stalled analysis drops the oldest audio, never grows
MAX_KEYWORDS = 200  # keywords heard and not yet taken


class AudioFeed:
    def __init__(self, source: AudioSource, realtime: bool, vad: VadConfig | None = None,
                 spotter: KeywordSpotter | None = None) -> None:
        self.source, self.realtime = source, realtime
        self.vad = VoiceActivityDetector(vad)
        self.spotter = spotter
        self.spotter_error: BaseException | None = None  # spotting stopped (the rest of the audio goes on)
        self.heard: deque[SpokenKeyword] = deque(maxlen=MAX_KEYWORDS)
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

    def set_spotter(self, spotter: KeywordSpotter | None) -> None:
        """Spot with ``spotter`` from the next chunk on (a new exam's keyword list); None stops spotting."""
        with self.lock:
            self.spotter, self.spotter_error = spotter, None

    def _features(self, chunk: AudioChunk) -> tuple[float, float, bool]:
        state = self.vad.update(chunk)
        spotter = self.spotter
        if spotter is not None:
            try:
                found = spotter.feed(chunk, state.active)
            except Exception as exc:  # keyword alerts stop; level and voice go on
                log.error("keyword spotting stopped: %s", exc)
                self.spotter, self.spotter_error, found = None, exc, []
            with self.lock:
                self.heard.extend(found)
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

    def keywords(self) -> tuple[SpokenKeyword, ...] | None:
        """The keywords heard in the audio read so far and not taken yet (call after :meth:`until`); None
        when nothing spots keywords."""
        with self.lock:
            if self.spotter is None and not self.heard:
                return None
            taken = tuple(self.heard)
            self.heard.clear()
        return taken

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self.source.close()
