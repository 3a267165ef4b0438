"""Audio features per analysed frame, pulled in step with the video's media time."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from edge_app.audio_feed import AudioFeed
from edge_app.capture.base import AudioChunk, SourceError, build_audio_source
from edge_app.rules.observation import SpokenKeyword
from edge_app.speech.keywords import KeywordSpotter
from tests.edge.capture.media import write_wav
from tests.need import needs_espeak

RATE = 16000


def feed_for(path: Path) -> AudioFeed:
    feed = AudioFeed(build_audio_source({"type": "wav", "path": str(path), "realtime": False}), realtime=False)
    feed.start()
    return feed


def test_levels_follow_media_time(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    samples = rng.normal(0, 0.003, RATE * 4)  # quiet room, about -50 dBFS
    samples[2 * RATE:3 * RATE] = np.sign(rng.normal(size=RATE)) * 0.7  # a loud second from 2 s to 3 s
    feed = feed_for(write_wav(tmp_path / "a.wav", samples, RATE))
    try:
        quiet, _ = feed.until(1.0)
        assert quiet is not None and quiet < -40
        assert feed.until(1.0) == (None, None)  # already reported
        loud, voice = feed.until(2.5)
        assert loud is not None and loud > -6 and voice is False  # loud noise is not a voice
        after, _ = feed.until(3.9)
        assert after is not None and after > -6  # the loud part up to 3 s is in this interval
        assert feed.until(10.0)[0] is not None and feed.ended
        assert feed.until(11.0) == (None, None)
    finally:
        feed.stop()


class LoudChunks(KeywordSpotter):
    """Reports the word "loud" at every chunk louder than -20 dBFS, and notes the thread it ran on."""

    keywords = ("loud",)

    def __init__(self) -> None:
        self.threads: set[str] = set()

    def feed(self, chunk: AudioChunk, voice: bool | None = None) -> list[SpokenKeyword]:
        self.threads.add(threading.current_thread().name)
        rms = float(np.sqrt(np.mean(np.square(chunk.samples, dtype=np.float64))))
        return [SpokenKeyword("loud", round(chunk.t, 3))] if rms > 0.1 else []

    def reset(self) -> None:
        pass


def test_a_file_asked_ahead_is_analysed_off_the_loop_with_the_same_results(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    samples = rng.normal(0, 0.003, RATE * 3)
    for start in (0.4, 1.1, 2.35):  # short loud bursts that fall between, and across, frame times
        samples[int(start * RATE):int((start + 0.2) * RATE)] = np.sign(rng.normal(size=int(0.2 * RATE))) * 0.5
    path = write_wav(tmp_path / "d.wav", samples, RATE)
    source = {"type": "wav", "path": str(path), "realtime": False}
    on_loop, ahead = LoudChunks(), LoudChunks()
    feeds = (AudioFeed(build_audio_source(source), False, spotter=on_loop),
             AudioFeed(build_audio_source(source), False, spotter=ahead))
    for feed in feeds:
        feed.start()
    try:
        got: tuple[list[object], list[object]] = ([], [])
        for step in range(1, 40):
            t = step * 0.0833  # 12 frames a second, not a multiple of the 30 ms chunks
            feeds[1].ahead(t)  # the loop's order: ask, analyse the frame's pixels, then take
            for feed, out in zip(feeds, got, strict=True):
                out.append((feed.until(t), feed.keywords()))
        assert got[0] == got[1]
        assert sum(1 for (level, _), _ in got[0] if level is not None and level > -10) >= 3
        assert [k.t for _, heard in got[0] if heard for k in heard][:1] == [pytest.approx(0.39, abs=0.03)]
        assert on_loop.threads == ahead.threads == {"invigil-audio"}
    finally:
        for feed in feeds:
            feed.stop()


def test_a_truncated_file_fails_at_start_naming_it(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "b.wav", np.zeros(RATE), RATE)
    path.write_bytes(path.read_bytes()[:60])
    feed = AudioFeed(build_audio_source({"type": "wav", "path": str(path), "realtime": False}), realtime=False)
    with pytest.raises(SourceError, match=r"b\.wav: truncated"):
        feed.start()


@pytest.mark.parametrize("seconds", [0.5, 2.0])
def test_nothing_is_lost_between_frames(tmp_path: Path, seconds: float) -> None:
    feed = feed_for(write_wav(tmp_path / "c.wav", np.full(int(RATE * seconds), 0.1), RATE))
    try:
        reported = 0
        t = 0.0
        while not feed.ended and t < 5:
            t += 0.1
            if feed.until(t)[0] is not None:
                reported += 1
        assert reported >= int(seconds / 0.1) - 1
    finally:
        feed.stop()


@needs_espeak
def test_keywords_heard_are_taken_once(tmp_path: Path) -> None:
    from edge_app.speech.keywords import build_spotter
    from tests.edge.speech.test_keywords import speech

    samples, rate = speech(tmp_path, "go forward ten meters")
    source = build_audio_source({"type": "wav", "path": str(write_wav(tmp_path / "k.wav", samples, rate)),
                                 "realtime": False})
    feed = AudioFeed(source, realtime=False, spotter=build_spotter(["ten"], {"ten": 1e-20}))
    feed.start()
    try:
        assert feed.keywords() == ()  # spotting, nothing heard yet
        feed.until(samples.size / rate)
        heard = feed.keywords()
        assert heard is not None and [k.word for k in heard] == ["ten"] and 1.0 < heard[0].t < 2.5
        assert feed.keywords() == ()
        feed.set_spotter(None)
        assert feed.keywords() is None  # no spotting: not measured
    finally:
        feed.stop()
