"""The running unit's side of the page: preview frames with the placement drawn in, verdicts and status.

:class:`PagePublisher` plugs into the session loop like the bridge link does: ``on_frame`` with every
frame (on the loop's thread) and ``emit`` with every loop message. It

* keeps a live placement check going until the placement is usable: a :class:`FrameAnalyzer` of its own
  (the unit's models, on the loop's thread, so no model is used by two threads) analyses
  ``placement_hz`` frames a second and gives a verdict every ``placement_seconds``, then starts afresh;
  once a verdict is usable (or the session's own calibration is) it stops and the verdict stays;
* encodes a downscaled preview at most ``preview_fps`` a second with the boxes drawn in;
* follows the loop's messages for pairing, camera and errors, and the outbox's depth.

Nothing here sends a frame anywhere but the :class:`PageState` (memory, or files on the unit).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import cv2

from edge_app.analysis import FrameAnalyzer
from edge_app.analysis_config import AnalysisConfig
from edge_app.capture.base import Frame
from edge_app.page.config import PageConfig
from edge_app.page.overlay import draw, encode, moment_boxes, verdict
from edge_app.page.state import PageState
from edge_app.vision.models import VisionModels

log = logging.getLogger(__name__)
QUEUE_EVERY = 2.0  # seconds (frame time) between looks at the outbox's depth
PAIRING = {"pairing": "pairing", "paired": "paired", "pair_refused": "refused", "session_started": "in_exam",
           "session_stopped": "unpaired"}
ERRORS = ("event_not_stored", "command_refused", "audio_unavailable", "keywords_unavailable", "template_refused",
          "thresholds_refused", "camera_stalled", "credentials_refused")
CREDENTIALS_REFUSED = ("The bridge refused this unit's credentials: it may have been revoked. Staff must re-enrol it "
                       "(python -m edge_app enrol with a new code).")


class PagePublisher:
    """Feeds ``state`` from the session loop (``on_frame``, ``emit``); ``queue`` gives the outbox's depth."""

    def __init__(self, state: PageState, config: PageConfig, models: VisionModels | None,
                 queue: Callable[[], int] | None = None, versions: dict[str, Any] | None = None) -> None:
        self.state, self.config, self.models, self.queue = state, config, models, queue
        self.analyzer: FrameAnalyzer | None = None
        self.settled = models is None  # True: the placement is usable (or there are no models to check it)
        self.verdict: dict[str, Any] | None = None
        self.boxes: dict[str, Any] = {}
        self.checks = 0  # live verdicts given
        self._next_preview: float | None = None  # frame times; None: at once
        self._next_check: float | None = None
        self._next_queue: float | None = None
        self._last_t: float | None = None
        state.update_status(versions=versions or {})

    def recheck(self) -> None:
        """Check the placement again from the next frame (the button's long press: the camera was moved)."""
        if self.models is not None:
            self.analyzer, self._next_check, self.settled = None, None, False

    def _analysis_config(self) -> AnalysisConfig:
        hz = self.config.placement_hz * 2  # above the calls' own rate: every analysed frame runs every model
        return AnalysisConfig(calibration_seconds=self.config.placement_seconds, detector_hz=hz, pose_hz=hz,
                              face_hz=hz, hand_crops=False)  # type: ignore[call-arg]

    def on_frame(self, frame: Frame) -> None:
        t = frame.t
        if self._last_t is not None and t < self._last_t:  # a new stream (the source restarted): due at once
            self._next_check = self._next_preview = self._next_queue = None
        self._last_t = t
        if not self.settled and (self._next_check is None or t >= self._next_check):
            self._next_check = t + 1 / self.config.placement_hz
            self._check(frame)
        if self._next_preview is None or t >= self._next_preview:
            self._next_preview = t + 1 / self.config.preview_fps
            self._preview(frame)
        if self.queue is not None and (self._next_queue is None or t >= self._next_queue):
            self._next_queue = t + QUEUE_EVERY
            try:
                self.state.update_status(queue=self.queue())
            except Exception as exc:  # a closed outbox at shutdown: the page shows the last depth
                log.debug("outbox depth not read: %s", exc)

    def _check(self, frame: Frame) -> None:
        assert self.models is not None
        if self.analyzer is None:
            self.analyzer = FrameAnalyzer(self.models, self._analysis_config())
        analyzer = self.analyzer
        height, width = frame.image.shape[:2]
        before = (len(analyzer.calibrator.boxes), len(analyzer.calibrator.screens)) if analyzer.calibrator else (0, 0)
        result = analyzer.analyse(frame.image, frame.t)
        cal = analyzer.calibrator
        if cal is not None:
            candidate = cal.boxes[-1] if len(cal.boxes) > before[0] else None
            screen = cal.screens[-1] if len(cal.screens) > before[1] else None
            self.boxes = moment_boxes((width, height), candidate, analyzer.keypoints if candidate else None, screen)
        if result.calibration is not None:
            self.checks += 1
            self._publish(verdict(result.calibration, (width, height), frame.t, "live", self.boxes))
            self.analyzer = None  # the next window starts afresh

    def _publish(self, found: dict[str, Any]) -> None:
        self.verdict = found
        if found["usable"]:
            self.settled = True  # ready: the check stops, the verdict stays
        self.state.publish_placement(found)

    def _preview(self, frame: Frame) -> None:
        image = frame.image
        scale = min(1.0, self.config.preview_width / image.shape[1])
        if scale < 1.0:
            image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                               interpolation=cv2.INTER_AREA)
        boxes = dict(self.boxes)
        if self.verdict is not None:
            boxes["zone"] = self.verdict["boxes"].get("zone")
            if self.settled:
                boxes = dict(self.verdict["boxes"])
        checks = self.verdict["checks"] if self.verdict is not None else None
        self.state.publish_frame(encode(draw(image, boxes, checks, scale)))

    def emit(self, message: dict[str, Any]) -> None:
        """One loop message: the session's calibration, pairing, camera and credential states, errors."""
        kind, state = message.get("type"), message.get("state")
        if kind == "calibration":
            zone = message.get("zone") or []
            found = {"usable": bool(message["usable"]), "checks": dict(message["checks"]),
                     "guidance": list(message["guidance"]), "boxes": {**self.boxes, "zone": zone},
                     "frame_size": (self.verdict or {}).get("frame_size"), "t": message.get("t"), "source": "session"}
            if found["usable"] or self.verdict is None:
                self._publish(found)
            return
        if kind != "status" or not isinstance(state, str):
            return
        if state in PAIRING:
            self.state.update_status(pairing=PAIRING[state], **{k: message[k] for k in ("session", "exam")
                                                                if k in message})
        if state in ("camera_stalled", "camera_recovered", "source_ended"):
            self.state.update_status(camera={"camera_stalled": "stalled", "camera_recovered": "ok",
                                             "source_ended": "ended"}[state])
        if state == "credentials_refused":  # the link: waiting will not fix it (edge_app.link.connack)
            self.state.update_status(credentials_refused={"reason": str(message.get("reason") or ""),
                                                          "message": CREDENTIALS_REFUSED})
        elif state == "credentials_accepted":
            self.state.update_status(credentials_refused=None)
        if state in ERRORS:
            self.state.add_error(f"{state}: {message.get('reason') or message.get('command') or ''}".rstrip(": "))
