"""The analysis loop: newest frame -> analysis -> rules -> alerts with evidence, until the source ends
or ``stop`` is set.

Bounded latency: the grabber keeps only the newest frame of a live camera, so a slow analysis skips
frames instead of falling behind; every model runs on its own cadence (:mod:`edge_app.analysis`). A
camera that stops delivering is reported as stalled (and again when it recovers), never waited on
forever: each wait is bounded and ``stop`` is checked between waits.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from edge_app.analysis import FrameAnalyzer
from edge_app.capture.base import Frame, FrameSource, SourceError, build_audio_source, build_source
from edge_app.capture.grabber import LatestFrameGrabber
from edge_app.config import EdgeConfig
from edge_app.evidence import EvidenceError, EvidenceRecorder
from edge_app.rules.config import RulesConfig
from edge_app.rules.debounce import Transition
from edge_app.rules.engine import EngineState, close_all, evaluate
from edge_app.speech.keywords import KeywordSpotter, SpeechUnavailable, build_spotter
from edge_app.systemd_notify import Notifier
from edge_app.vision.models import VisionModels, load_models

if TYPE_CHECKING:
    from edge_app.audio_feed import AudioFeed

log = logging.getLogger(__name__)
Emit = Callable[[dict[str, Any]], None]
WAIT = 0.25  # seconds per bounded wait for a frame
EVIDENCE_WAIT = 5.0  # seconds a file's frame may wait for the evidence encoder (a live camera's never waits)
KEEP_TIMINGS = 20_000  # per-frame timings kept for figures (the newest; a half is dropped at once when full)


@dataclass
class LoopStats:
    frames: int = 0  # frames analysed
    dropped: int = 0  # frames the grabber skipped because analysis was busy
    alerts: int = 0  # alert starts
    loop_ms: list[float] = field(default_factory=list)  # wall time per analysed frame (the newest KEEP_TIMINGS)
    stages_ms: dict[str, list[float]] = field(default_factory=dict)  # analysis stages, evidence, audio, rules
    wall_seconds: float = 0.0
    media_seconds: float = 0.0
    stalls: int = 0
    evidence_dropped: int = 0  # ring frames left out (the evidence encoder was behind or failed)


def _keep(values: list[float], value: float) -> None:
    """Append, keeping the newest KEEP_TIMINGS (a unit runs for weeks across sessions)."""
    values.append(value)
    if len(values) > KEEP_TIMINGS:
        del values[:len(values) - KEEP_TIMINGS // 2]


def alert_message(transition: Transition, uid: str, evidence: dict[str, Any] | None) -> dict[str, Any]:
    return {"type": "alert", "id": uid, "kind": transition.kind, "phase": transition.phase,
            "t": round(transition.t, 3), "since": round(transition.since, 3), "severity": transition.severity,
            "confidence": round(transition.confidence, 3),
            "box": [round(v, 1) for v in transition.box] if transition.box else None, "evidence": evidence,
            **({"keyword": transition.label} if transition.label else {})}


class SessionRunner:
    """One exam session on one device: owns the sources, the models, the engine and the evidence."""

    def __init__(self, config: EdgeConfig, emit: Emit, models: VisionModels | None = None,
                 template: Any = None, on_frame: Callable[[Frame], None] | None = None) -> None:
        self.config, self.emit, self.on_frame = config, emit, on_frame
        self.models = models or load_models(config.models.dir, config.models.quant, config.models.threads,
                                            config.models.runtime)
        rules = config.rules
        self.analyzer = FrameAnalyzer(self.models, config.analysis, template, rules.left_zone.margin,
                                      rules.identity_mismatch.min_similarity)
        self.engine = EngineState()
        self.evidence = EvidenceRecorder(config.evidence, config.evidence_dir(), background=True)
        self.uids: dict[str, str] = {}
        self.stats = LoopStats()
        self.last_t = 0.0
        self.audio_failed = False
        self.audio: AudioFeed | None = None
        self.evidence_wait = 0.0
        self.notifier = Notifier.from_environ()  # systemd's READY=1 and watchdog (None outside a notify service)

    def run(self, stop: threading.Event, source: FrameSource | None = None) -> LoopStats:
        """Run until the source ends or ``stop`` is set; ``source`` replaces the configured camera."""
        source = source or build_source(self.config.camera)
        grabber = LatestFrameGrabber(source)
        self.evidence_wait = 0.0 if grabber.drop else EVIDENCE_WAIT  # files played as fast as analysed lose no frame
        audio = None
        if self.config.audio is not None:
            from edge_app.audio_feed import AudioFeed

            audio_config = self.config.audio
            audio = AudioFeed(build_audio_source(audio_config), getattr(audio_config, "realtime", True),
                              spotter=self._spotter(self.config.rules))
        self.audio = audio
        began = time.monotonic()
        grabber.start()
        if audio is not None:
            try:
                audio.start()
            except SourceError as exc:  # the exam goes on without audio alerts, and says so
                self.emit({"type": "status", "state": "audio_unavailable", "t": 0.0, "reason": str(exc)})
                audio = None
        stalled = False
        try:
            while not stop.is_set():
                frame = grabber.get(timeout=WAIT)
                if self.notifier is not None:  # a loop that stops turning stops feeding: systemd restarts it
                    self.notifier.turn(frame is not None)
                if frame is None:
                    if grabber.error is not None:
                        raise grabber.error
                    if grabber.ended:
                        self.emit({"type": "status", "state": "source_ended", "t": round(self.last_t, 3)})
                        break
                    if not stalled and grabber.stalled(time.monotonic(), self.config.stall_after):
                        stalled = True
                        self.stats.stalls += 1
                        self.emit({"type": "status", "state": "camera_stalled", "t": round(self.last_t, 3),
                                   "seconds": self.config.stall_after})
                    continue
                if stalled:
                    stalled = False
                    self.emit({"type": "status", "state": "camera_recovered", "t": round(frame.t, 3)})
                if self.on_frame is not None:
                    try:
                        self.on_frame(frame)
                    except Exception:  # the hook (the bridge link) failing never stops the analysis
                        log.exception("on_frame hook failed at t=%.2f", frame.t)
                self._analyse(frame, audio)
        finally:
            if self.notifier is not None:
                self.notifier.stopping()
            grabber.stop()
            if audio is not None:
                audio.stop()
            self._close()
            self.stats.dropped = grabber.dropped
            self.stats.evidence_dropped = self.evidence.ring_dropped + self.evidence.ring_errors
            self.stats.wall_seconds = time.monotonic() - began
        return self.stats

    @property
    def template(self) -> Any:
        """The identity template faces are checked against (None: no checks)."""
        return self.analyzer.template

    def set_template(self, template: Any) -> None:
        """Check identity against ``template`` (None: no checks) from the next face on (the enrolled face of the
        paired session); doubts about the previous template are forgotten."""
        self.analyzer.use_template(template)

    def set_rules(self, rules: RulesConfig) -> None:
        """Judge with ``rules`` from the next frame; running alerts keep their state."""
        keywords_changed = rules.speech_keyword != self.config.rules.speech_keyword
        self.config = self.config.model_copy(update={"rules": rules})
        self.analyzer.use_limits(rules.left_zone.margin, rules.identity_mismatch.min_similarity)
        if keywords_changed and self.audio is not None:
            self.audio.set_spotter(self._spotter(rules))

    def _spotter(self, rules: RulesConfig) -> KeywordSpotter | None:
        """The keyword spotter the rules ask for; None when keywords are off or cannot be spotted here (said once
        as a status message, and the exam goes on)."""
        rule = rules.speech_keyword
        if not rule.enabled:
            return None
        try:
            return build_spotter(rule.keywords, rule.thresholds, rule.default_threshold)
        except SpeechUnavailable as exc:
            self.emit({"type": "status", "state": "keywords_unavailable", "t": round(self.last_t, 3),
                       "reason": str(exc)})
            return None

    def end_alerts(self) -> None:
        """End every running alert now (the session stopped); the engine starts afresh."""
        transitions, self.engine = close_all(self.config.rules, self.engine, self.last_t)
        for transition in transitions:
            self._send(transition, None)
        self.engine = EngineState()

    def _analyse(self, frame: Frame, audio: AudioFeed | None) -> None:
        begun = time.perf_counter()
        self.last_t = frame.t
        try:
            self.evidence.push(frame.image, frame.t, self.evidence_wait)  # a worker encodes (evidence.recorder)
        except EvidenceError as exc:
            log.warning("frame %d not kept as evidence: %s", frame.index, exc)
        mark = time.perf_counter()
        stages = {"evidence": (mark - begun) * 1000}
        if audio is not None:
            audio.ahead(frame.t)  # a file's audio up to this frame is analysed while the pixels are
        analysis = self.analyzer.analyse(frame.image, frame.t)
        stages.update(analysis.stages_ms)
        if analysis.calibration is not None:
            cal = analysis.calibration
            self.emit({"type": "calibration", "t": round(frame.t, 3), "usable": cal.placement.usable,
                       "checks": cal.placement.checks, "guidance": cal.placement.guidance,
                       "zone": [round(v, 1) for v in cal.zone], "yaw": round(cal.yaw, 1),
                       "pitch": round(cal.pitch, 1)})
        obs = analysis.observation
        mark = time.perf_counter()
        dbfs, voice = audio.until(frame.t) if audio is not None else (None, None)  # drained while calibrating too
        heard = audio.keywords() if audio is not None else None
        if audio is not None:
            stages["audio"] = (time.perf_counter() - mark) * 1000
            if audio.error is not None and not self.audio_failed:
                self.audio_failed = True
                self.emit({"type": "status", "state": "audio_unavailable", "t": round(frame.t, 3),
                           "reason": str(audio.error)})
        if obs is not None:
            mark = time.perf_counter()
            if dbfs is not None or heard is not None:
                obs = replace(obs, dbfs=dbfs, voice=voice, keywords=heard)
            transitions, self.engine = evaluate(self.config.rules, self.engine, obs)
            for transition in transitions:
                self._send(transition, frame)
            stages["rules"] = (time.perf_counter() - mark) * 1000  # with the alerts' snapshots
        for name, ms in stages.items():
            _keep(self.stats.stages_ms.setdefault(name, []), ms)
        self.stats.frames += 1
        self.stats.media_seconds = frame.t
        _keep(self.stats.loop_ms, (time.perf_counter() - begun) * 1000)

    def _send(self, transition: Transition, frame: Frame | None) -> None:
        if transition.phase == "start":
            self.uids[transition.alert_id] = uuid.uuid4().hex
            self.stats.alerts += 1
        uid = self.uids.get(transition.alert_id, transition.alert_id)
        evidence = None
        if transition.phase == "start" and frame is not None and self.config.evidence.enabled:
            try:
                kept = self.evidence.snapshot(uid, transition.kind, frame.image, frame.t, transition.box)
                evidence = {"sha256": kept.sha256, "path": str(kept.path), "bytes": kept.bytes,
                            "clip": str(kept.clip_path) if kept.clip_path else None}
                self.evidence.enforce()  # ages that hold when the clock is stepped (evidence.dating)
            except EvidenceError as exc:
                log.warning("alert %s sent without evidence: %s", uid, exc)
        self.emit(alert_message(transition, uid, evidence))
        if transition.phase == "end":
            self.uids.pop(transition.alert_id, None)

    def _close(self) -> None:
        transitions, self.engine = close_all(self.config.rules, self.engine, self.last_t)
        for transition in transitions:
            self._send(transition, None)
        try:
            self.evidence.flush(self.last_t)
        except EvidenceError as exc:
            log.warning("pending clips not written: %s", exc)
        self.evidence.close()
