"""Audio features per analysed frame: loudest level, any voice and the keywords heard since the previous frame.

Both kinds of source are read and analysed on the feed's own thread, off the analysis loop. A live
microphone (or a file paced in real time) is read as it comes into a bounded buffer. A file played as fast
as possible is pulled in step with the video's media time: the loop asks for the audio up to a frame's time
(:meth:`AudioFeed.ahead`) before analysing the frame's pixels and takes it (:meth:`AudioFeed.until`) after,
so the two overlap and the result is the same, chunk for chunk, as reading it on the loop (deterministic).
Keyword spotting is optional (a :class:`~edge_app.speech.keywords.KeywordSpotter`, swappable with the
exam's list).
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
        self._asked = self._reached = float("-inf")  # a file's media time asked for / analysed up to
        self._turn = threading.Condition(self.lock)

    def start(self) -> None:
        self.source.open()
        target = self._read_live if self.realtime else self._read_file
        self._thread = threading.Thread(target=target, name="invigil-audio", daemon=True)
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

    def _read_file(self) -> None:
        """A file's thread: analyse the chunks that start by the media time asked for, then wait to be asked."""
        while True:
            with self._turn:
                while not self._stop.is_set() and self._asked <= self._reached:
                    self._turn.wait()
                if self._stop.is_set():
                    return
                asked = self._asked
            try:
                while not self.ended and self.error is None:
                    if self._pending is None:
                        self._pending = self.source.read()
                        if self._pending is None:
                            self.ended = True
                            break
                    if self._pending.t > asked:
                        break
                    features = self._features(self._pending)
                    self._pending = None
                    with self.lock:
                        self.buffer.append(features)
            except Exception as exc:  # reported by the loop, which carries on without audio
                self.error = exc
            with self._turn:
                self._reached = asked
                self._turn.notify_all()

    def ahead(self, t: float) -> None:
        """Start analysing a file's audio up to media time ``t`` on the feed's thread (a live source: nothing)."""
        if not self.realtime:
            with self._turn:
                if t > self._asked:
                    self._asked = t
                    self._turn.notify_all()

    def until(self, t: float) -> tuple[float | None, bool | None]:
        """(loudest dBFS, any voice) of the audio up to media time ``t`` not reported yet; (None, None) if none.
        A file's audio up to ``t`` is analysed first (waiting for the feed's thread, which :meth:`ahead` may
        have started on it)."""
        if not self.realtime:
            self.ahead(t)
            with self._turn:
                while self._reached < t and self._thread is not None and self._thread.is_alive():
                    self._turn.wait(0.25)
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
        with self._turn:
            self._stop.set()
            self._turn.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self.source.close()
