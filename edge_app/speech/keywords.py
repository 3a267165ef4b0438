"""Offline keyword spotting: 16 kHz mono chunks in, the keywords of the exam's list with their times out.

Only words of the configured list are ever reported (no transcript exists, so none can leave the unit).
:class:`PocketsphinxSpotter` runs pocketsphinx's keyphrase search (its English acoustic model and
dictionary ship inside the wheel) with one detection threshold per keyword. Each keyword's threshold
trades misses for false hits: short words need strict ones (1e-1 .. 1e-5), long ones lenient ones
(1e-20 .. 1e-40). The defaults (``edge_app.rules.presets``) were chosen on espeak-ng tuning sentences only;
``tools/bench/speech.py`` reports hits and false hits on real recordings beside them.

pocketsphinx is optional (the ``speech`` extra): without it :func:`build_spotter` raises
:class:`SpeechUnavailable` saying how to install it.
"""

from __future__ import annotations

import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from edge_app.audio_features import pcm16
from edge_app.capture.base import AudioChunk
from edge_app.rules.config import KEYWORD
from edge_app.rules.observation import SpokenKeyword

RATE = 16000  # what the acoustic model was trained on; other rates are resampled linearly (no anti-alias
# filter: a 16 kHz microphone, the unit's default, is what the thresholds were chosen on)
INSTALL = "pip install 'invigil[speech]' (pocketsphinx from the package registry; its wheel has the English model)"
MAX_UTTERANCE_S = 20.0  # restart the search at the next unvoiced chunk after this much audio
FORCE_RESTART_S = 60.0  # ... and after this much in any case (bounds the decoder's memory)


class SpeechUnavailable(RuntimeError):
    """Keyword spotting cannot run here (its package or a keyword's pronunciation is missing)."""


def check_keyword(word: str) -> str:
    """``word`` if it is one to four lowercase words of a-z and apostrophes, else ValueError naming it."""
    if not KEYWORD.fullmatch(word):
        raise ValueError(f"keyword {word!r} must be one to four lowercase words of a-z and ' separated by "
                         "single spaces")
    return word


class KeywordSpotter(ABC):
    """Finds the words of a fixed list in consecutive chunks of one audio stream."""

    keywords: tuple[str, ...]

    @abstractmethod
    def feed(self, chunk: AudioChunk, voice: bool | None = None) -> list[SpokenKeyword]:
        """The keywords found so far that were not reported before (``voice``: the VAD's verdict on this
        chunk, which lets the spotter restart its search in a pause)."""

    @abstractmethod
    def reset(self) -> None:
        """Forget the audio so far (a new stream, or a gap in this one)."""


class PocketsphinxSpotter(KeywordSpotter):
    """pocketsphinx keyphrase search over the stream, restarted in pauses every ~20 s."""

    def __init__(self, keywords: Iterable[str], thresholds: Mapping[str, float], default_threshold: float) -> None:
        self.keywords = tuple(dict.fromkeys(check_keyword(k) for k in keywords))
        if not self.keywords:
            raise ValueError("keyword spotting needs at least one keyword")
        try:
            from pocketsphinx import Decoder
        except ImportError as exc:
            raise SpeechUnavailable(f"keyword spotting needs pocketsphinx ({exc}); install it with: "
                                    f"{INSTALL}") from None
        self.thresholds = {k: float(thresholds.get(k, default_threshold)) for k in self.keywords}
        self._decoder = _decoder(Decoder, self.thresholds)
        self._frame_rate = float(self._decoder.config["frate"])
        self._in_utterance = False
        self._utt_t0 = 0.0
        self._utt_seconds = 0.0
        self._reported: set[tuple[str, int]] = set()

    def reset(self) -> None:
        if self._in_utterance:
            self._decoder.end_utt()
        self._in_utterance = False
        self._reported.clear()

    def feed(self, chunk: AudioChunk, voice: bool | None = None) -> list[SpokenKeyword]:
        if self._in_utterance and (self._utt_seconds >= FORCE_RESTART_S
                                   or (self._utt_seconds >= MAX_UTTERANCE_S and voice is False)):
            self.reset()
        if not self._in_utterance:
            self._decoder.start_utt()
            self._in_utterance, self._utt_t0, self._utt_seconds = True, chunk.t, 0.0
        self._decoder.process_raw(pcm16(chunk.samples, chunk.rate, RATE).tobytes(), False, False)
        self._utt_seconds += chunk.duration
        if self._decoder.hyp() is None:
            return []
        found = []
        for seg in self._decoder.seg():
            word = seg.word.strip()
            key = (word, int(seg.start_frame))
            if word in self.thresholds and key not in self._reported:
                self._reported.add(key)
                found.append(SpokenKeyword(word, round(self._utt_t0 + seg.start_frame / self._frame_rate, 3)))
        return sorted(found, key=lambda k: k.t)


def _decoder(decoder_class: Any, thresholds: Mapping[str, float]) -> Any:
    """A keyphrase-search decoder for ``thresholds`` (keyword -> detection threshold), checking every word
    is in the dictionary (pocketsphinx would otherwise skip it quietly)."""
    handle, path = tempfile.mkstemp(suffix=".kws", prefix="invigil-")
    try:
        with os.fdopen(handle, "w", encoding="ascii") as out:
            out.writelines(f"{word} /{threshold:.0e}/\n" for word, threshold in thresholds.items())
        decoder = decoder_class(kws=path, loglevel="FATAL")
    finally:
        os.unlink(path)
    unknown = [word for word in thresholds if any(decoder.lookup_word(w) is None for w in word.split())]
    if unknown:
        raise SpeechUnavailable(f"no pronunciation for keyword(s) {unknown} in the English dictionary; "
                                "spell numbers as words (\"seven\", not \"7\")")
    return decoder


def build_spotter(keywords: Iterable[str], thresholds: Mapping[str, float] | None = None,
                  default_threshold: float = 1e-10) -> KeywordSpotter:
    """The keyword spotter for a list of keywords (SpeechUnavailable when it cannot run on this unit)."""
    return PocketsphinxSpotter(keywords, thresholds or {}, default_threshold)


def spot(spotter: KeywordSpotter, samples: np.ndarray, rate: int, chunk_ms: int = 30) -> list[SpokenKeyword]:
    """Every keyword in one recording, fed as consecutive chunks (for tools and tests)."""
    step = max(1, round(rate * chunk_ms / 1000))
    spotter.reset()
    found: list[SpokenKeyword] = []
    for start in range(0, len(samples), step):
        found += spotter.feed(AudioChunk(np.asarray(samples[start : start + step], np.float32), rate, start / rate))
    spotter.reset()
    return found
