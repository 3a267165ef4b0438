"""A rendered scenario folder played as a camera (and microphone): video.avi, optional audio.wav, truth.json.

Frames carry media time. ``realtime=False`` delivers every frame as fast as it is read, for deterministic
evaluation. ``realtime=True`` behaves like a camera: each frame is delivered at its media time on the wall
clock, and frames whose time has passed while the reader was busy are skipped (the index shows the gap).
With ``screen`` set, the image in that file is shown on the candidate's PC screen (tools/scenarios/screen.py).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

from edge_app.capture.base import Frame, FrameSource, SourceError, register_source
from edge_app.capture.config import ScenarioSourceConfig, WavAudioConfig
from edge_app.capture.opencv_src import VideoFileReader
from edge_app.capture.pacing import Clock, Pacer, Sleep
from edge_app.capture.wav import WavAudioSource
from tools.scenarios.screen import ScreenOverlay

VIDEO, AUDIO, TRUTH = "video.avi", "audio.wav", "truth.json"
TRUTH_KEYS = ("name", "fps", "duration", "frame_size", "alerts")
ALERT_KEYS = ("kind", "start", "end")


@register_source
class ScenarioSource(FrameSource):
    """Plays ``<path>/video.avi``; ``audio()`` gives the matching audio.wav on the same clock."""

    type = "scenario"

    def __init__(self, config: ScenarioSourceConfig, clock: Clock = time.monotonic, sleep: Sleep = time.sleep) -> None:
        self.config = config
        self.folder = Path(config.path)
        self._pacer = Pacer(clock, sleep)
        self._video = VideoFileReader(self.folder / VIDEO, label="scenario video")
        self.screen = ScreenOverlay(config.screen, clock) if config.screen is not None else None
        self._opened = False
        self.skipped = 0  # frames passed over in realtime mode because their time had gone

    @property
    def live(self) -> bool:
        return False

    @property
    def realtime(self) -> bool:
        return self.config.realtime

    @property
    def fps(self) -> float | None:
        return self._video.fps

    def open(self) -> None:
        if not self.folder.is_dir():
            raise SourceError(f"scenario {self.folder}: folder not found")
        self._video.open()
        self._opened = True
        self.skipped = 0

    def read(self) -> Frame | None:
        if not self._opened:
            raise SourceError(f"scenario {self.folder}: read before open()")
        if not self.config.realtime:
            return self._show_screen(self._video.read())
        period = 1.0 / (self._video.fps or 30.0)
        while self._video.next_index * period + period <= self._pacer.elapsed():
            if not self._video.skip():  # its successor is already due: a camera would have replaced it
                return None
            self.skipped += 1
        frame = self._video.read()
        if frame is not None:
            self._pacer.wait_until(frame.t)
        return self._show_screen(frame)

    def _show_screen(self, frame: Frame | None) -> Frame | None:
        if frame is None or self.screen is None:
            return frame
        return dataclasses.replace(frame, image=self.screen.apply(frame.image))

    def close(self) -> None:
        self._video.close()
        self._opened = False

    def audio(self, chunk_ms: int = 30) -> WavAudioSource | None:
        """The scenario's audio.wav as a source paced on the same clock as the video, or None if it has none."""
        return scenario_audio(self.folder, self.config.realtime, chunk_ms, pacer=self._pacer)

    def truth(self) -> dict[str, Any]:
        """The scenario's validated truth.json."""
        return load_truth(self.folder)


def scenario_audio(folder: str | Path, realtime: bool = False, chunk_ms: int = 30,
                   pacer: Pacer | None = None) -> WavAudioSource | None:
    """A scenario folder's audio.wav as an audio source, or None when the scenario is silent (no audio.wav)."""
    path = Path(folder) / AUDIO
    if not path.exists():
        return None
    return WavAudioSource(WavAudioConfig(path=path, chunk_ms=chunk_ms, realtime=realtime), pacer=pacer)


def load_truth(path: str | Path) -> dict[str, Any]:
    """A scenario's truth.json (``path`` is the file or its folder), checked for the keys evaluation needs.

    Required: name (text), fps (> 0), duration (>= 0 s), frame_size ([width, height]), alerts (a list of
    {kind, start, end} with 0 <= start <= end). Other keys are kept as they are.
    """
    path = Path(path)
    if path.is_dir():
        path = path / TRUTH
    if not path.is_file():
        raise SourceError(f"truth file {path}: not found")
    try:
        truth = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise SourceError(f"truth file {path}: not UTF-8 text ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise SourceError(f"truth file {path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") \
            from exc
    if not isinstance(truth, dict):
        raise SourceError(f"truth file {path}: expected a JSON object, found {type(truth).__name__}")
    missing = [key for key in TRUTH_KEYS if key not in truth]
    if missing:
        raise SourceError(f"truth file {path}: missing keys {', '.join(missing)} (needs {', '.join(TRUTH_KEYS)})")
    _check(path, "name", isinstance(truth["name"], str) and truth["name"], "a non-empty string")
    _check(path, "fps", _number(truth["fps"]) and truth["fps"] > 0, "a number > 0")
    _check(path, "duration", _number(truth["duration"]) and truth["duration"] >= 0, "a number >= 0")
    size = truth["frame_size"]
    _check(path, "frame_size", isinstance(size, list) and len(size) == 2
           and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size), "[width, height] in pixels")
    _check(path, "alerts", isinstance(truth["alerts"], list), "a list of {kind, start, end}")
    for i, alert in enumerate(truth["alerts"]):
        where = f"alerts[{i}]"
        _check(path, where, isinstance(alert, dict) and all(k in alert for k in ALERT_KEYS),
               "an object with kind, start and end")
        _check(path, f"{where}.kind", isinstance(alert["kind"], str) and alert["kind"], "a non-empty string")
        _check(path, f"{where}.start", _number(alert["start"]) and alert["start"] >= 0, "a number of seconds >= 0")
        _check(path, f"{where}.end", _number(alert["end"]) and alert["end"] >= alert["start"],
               "a number of seconds >= start")
    return truth


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check(path: Path, field: str, ok: object, expected: str) -> None:
    if not ok:
        raise SourceError(f"truth file {path}: {field} must be {expected}")
