"""EvidenceRecorder: the analysis loop's one object for evidence.

``push`` every frame (thinned to ``ring_fps``, JPEG in RAM), ``snapshot`` when an alert starts (JPEG
on disk now, clip scheduled), ``enforce`` periodically and after each snapshot, ``flush`` at shutdown.
Capture times ``t`` are seconds on the caller's capture clock; file dates come from the recorder's
:class:`~edge_app.evidence.dating.EvidenceClock` (ages that hold when the clock is stepped), or from
``now_wall`` where a caller passes it. Call it from one thread.

With ``background=True`` the loop thread only admits a frame (thinning: tens of microseconds); a worker
thread JPEG-encodes it into the ring and feeds waiting clips, and another writes clips. Memory stays
bounded: the ring holds at most ``ring_max_frames`` JPEG frames of at most ``ring_seconds`` (20-80 KB
each at 640x480, up to about 200 KB at 1280x720, by scene detail; at the defaults, about 50 frames: 4 MB
and 10 MB at most), and at most :data:`MAX_QUEUED_FRAMES` raw frames wait for the encoder, held by
reference (so a pushed frame must not be modified afterwards; 7.4 MB for eight 640x480 frames, 22 MB
at 1280x720). A frame that finds the queue full is left out of the ring and counted in
``ring_dropped``; the alert's snapshot is always encoded at once, on the caller's thread, so it is
never lost.
"""

from __future__ import annotations

import hashlib
import logging
import math
import queue
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_app.evidence.clip import PendingClip, write_clip
from edge_app.evidence.config import EvidenceConfig
from edge_app.evidence.dating import EvidenceClock
from edge_app.evidence.errors import EvidenceError
from edge_app.evidence.jpeg import check_rgb, encode_jpeg, fit_bgr
from edge_app.evidence.ring import FrameRing
from edge_app.evidence.storage import check_alert_id, enforce, evidence_path, write_bytes_atomic

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in frame pixels
MAX_PENDING_CLIPS = 8  # alerts starting together share frames, but each clip costs a decode/encode pass
MAX_QUEUED_FRAMES = 8  # raw frames waiting for the ring encoder (background mode; 1.6 s at 5 fps); more are dropped
BOX_COLOUR = (0, 0, 255)  # BGR red
Queued = tuple[np.ndarray, float, bool] | threading.Event | None  # a frame (image, t, restart), a drain mark, stop


@dataclass(frozen=True)
class Evidence:
    """What was kept for one alert; ``sha256`` (hex) of the snapshot goes into the alert event.

    ``clip_path`` is where the clip will be once its post-roll is complete (``None`` when no clip was
    scheduled); a clip that fails to write is logged and left out.
    """

    alert_id: str
    path: Path
    sha256: str
    bytes: int
    clip_path: Path | None


class EvidenceRecorder:
    """Frame ring, snapshots, clips, quota and retention for one evidence directory."""

    def __init__(self, config: EvidenceConfig, directory: Path, background: bool = False,
                 clock: EvidenceClock | None = None) -> None:
        """``background``: encode ring frames and write clips on worker threads, so the analysis loop never
        waits for the JPEG encoder or the SD card (a clip takes a quarter of a second on x86, longer on a Pi)."""
        self.config = config
        self.directory = directory
        self.clock = clock or EvidenceClock()
        self.ring = FrameRing(
            config.ring_seconds, config.ring_max_frames, config.ring_fps, config.snapshot_max_side, config.jpeg_quality
        )
        self.pending: dict[str, PendingClip] = {}
        self.clips_written = 0
        self.clip_errors = 0
        self.ring_dropped = 0  # admitted frames left out of the ring because the encoder was behind
        self.ring_errors = 0  # frames the encoder failed on (background mode; synchronously they raise)
        self._lock = threading.Lock()  # the ring and pending clips: scheduled by the caller, fed by the encoder
        self._restart = False  # a dropped frame restarted the ring: the next queued frame carries it
        self._clips: queue.Queue[PendingClip | None] | None = None
        self._frames: queue.Queue[Queued] | None = None
        self._slots = threading.Semaphore(MAX_QUEUED_FRAMES)
        self._workers: list[threading.Thread] = []
        if background:
            self._clips = queue.Queue(maxsize=MAX_PENDING_CLIPS)
            self._frames = queue.Queue()  # frames bounded by _slots; drain marks and stop always fit
            for target, name in ((self._ring_worker, "invigil-ring"), (self._clip_worker, "invigil-clips")):
                self._workers.append(threading.Thread(target=target, name=name, daemon=True))
                self._workers[-1].start()

    def push(self, image: np.ndarray, t: float, wait: float = 0.0) -> None:
        """Add the RGB frame captured at ``t`` to the ring and to waiting clips; write clips that are complete.

        In background mode a full encoder queue drops the frame, or first waits up to ``wait`` seconds for
        room (a file played for evaluation keeps every frame; a live camera never waits). A malformed
        frame raises :class:`EvidenceError`; a clip that cannot be written is logged, not raised.
        """
        if not self.config.enabled:
            return
        check_rgb(image)
        restart = self.ring.admit(t)
        if restart is None:
            return
        if self._frames is None:
            self._store(image, t, restart)
        elif self._slots.acquire(timeout=wait) if wait > 0 else self._slots.acquire(blocking=False):
            self._frames.put((image, t, restart or self._restart))
            self._restart = False
        else:
            self.ring_dropped += 1
            self._restart = self._restart or restart

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait (bounded) until every frame pushed so far is in the ring; False on timeout."""
        if self._frames is None:
            return True
        done = threading.Event()
        self._frames.put(done)
        return done.wait(timeout)

    def snapshot(
        self, alert_id: str, kind: str, image: np.ndarray, t: float, box: Box | None = None,
        *, now_wall: float | None = None,
    ) -> Evidence:
        """Write ``<directory>/<YYYYMMDD>/<alert_id>.jpg`` of the RGB frame at ``t``, with ``box`` drawn if given.

        ``now_wall`` (epoch seconds; default: the recorder's clock) dates the file. Schedules the clip from
        ``t - pre_seconds`` to ``t + post_seconds`` when clips are on. Raises :class:`EvidenceError` (and
        leaves no file behind) when evidence is off, the input is bad, the id was used, or the disk fails.
        """
        if not self.config.enabled:
            raise EvidenceError("evidence is disabled (evidence.enabled = false)")
        check_alert_id(alert_id)
        check_rgb(image, f"snapshot image of alert {alert_id}")
        wall, dated = self.clock.now() if now_wall is None else (now_wall, None)
        path = evidence_path(self.directory, alert_id, ".jpg", wall)
        clip_path = path.with_suffix(".avi")
        if path.exists() or clip_path.exists() or alert_id in self.pending:
            raise EvidenceError(
                f"evidence for alert {alert_id} already exists in {path.parent}: alert ids must be unique"
            )
        bgr, scale = fit_bgr(image, self.config.snapshot_max_side)
        if box is not None:
            draw_box(bgr, box, scale, kind, alert_id)
        data = encode_jpeg(bgr, self.config.jpeg_quality)
        write_bytes_atomic(path, data, wall)
        if dated is not None:
            self.clock.wrote(path, dated)
        scheduled = self._schedule_clip(alert_id, clip_path, t, wall, dated) if self.config.clip else None
        return Evidence(alert_id, path, hashlib.sha256(data).hexdigest(), len(data), scheduled)

    def flush(self, t: float) -> None:
        """Write every waiting clip with the frames it has up to ``t`` (at shutdown)."""
        if not self.drain():
            log.warning("evidence: ring encoder behind at flush; clips get the frames encoded so far")
        with self._lock:
            clips = list(self.pending.values())
            self.pending.clear()
        for clip in clips:
            clip.frames = [f for f in clip.frames if f.t <= t]
            self._write_clip(clip)

    def enforce(self, now_wall: float | None = None) -> int:
        """Delete abandoned temp files, evidence older than ``retention_days``, then the oldest until under quota.

        Ages come from the recorder's clock (they hold when the wall clock is stepped), or from ``now_wall``
        and the files' dates where given. Returns how many files were removed; file-system trouble is logged,
        never raised.
        """
        retention, quota = self.config.retention_days * 86400.0, self.config.quota_mb * 1e6
        if now_wall is not None:
            return enforce(self.directory, now_wall, retention, quota)
        now = self.clock.now()
        removed = enforce(self.directory, now[0], retention, quota,
                          lambda f: self.clock.age(f.path, f.mtime, now))
        self.clock.forget_missing()
        return removed

    def _schedule_clip(self, alert_id: str, path: Path, t: float, wall: float, dated: float | None) -> Path | None:
        clip = PendingClip(alert_id, path, t - self.config.pre_seconds, t + self.config.post_seconds, wall,
                           dated=dated)
        with self._lock:  # frames still queued for the encoder join the clip as they are encoded
            if len(self.pending) >= MAX_PENDING_CLIPS:
                log.warning("evidence: %d clips waiting; alert %s gets a snapshot only", len(self.pending), alert_id)
                return None
            for frame in self.ring.since(clip.start):
                clip.add(frame)
            self.pending[alert_id] = clip
        return path

    def _store(self, image: np.ndarray, t: float, restart: bool) -> None:
        """Encode an admitted frame into the ring, feed it to waiting clips, hand on the complete ones."""
        frame = self.ring.encode(image, t)
        done: list[PendingClip] = []
        with self._lock:
            self.ring.add(frame, restart)
            for alert_id, clip in list(self.pending.items()):
                clip.add(frame)
                if t >= clip.end:
                    done.append(self.pending.pop(alert_id))
        for clip in done:
            self._write_clip(clip)

    def _ring_worker(self) -> None:
        assert self._frames is not None
        frames = self._frames
        while (item := frames.get()) is not None:
            if isinstance(item, threading.Event):
                item.set()
                continue
            try:
                self._store(*item)
            except Exception:  # a frame the encoder cannot take is left out; the ring goes on
                log.exception("evidence: ring frame at t=%.2f not kept", item[1])
                self.ring_errors += 1
            finally:
                self._slots.release()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the workers, waiting (bounded) for the frames and clips handed to them; call after
        :meth:`flush` at shutdown."""
        if self._frames is not None:
            self._frames.put(None)
            self._workers[0].join(timeout)
            self._frames = None
        if self._clips is not None:
            try:
                self._clips.put(None, timeout=timeout)
            except queue.Full:
                log.warning("evidence: clip writer busy at shutdown; waiting clips may be lost")
            self._workers[1].join(timeout)
            self._clips = None

    def _clip_worker(self) -> None:
        assert self._clips is not None
        clips = self._clips
        while (clip := clips.get()) is not None:
            self._encode_clip(clip)

    def _write_clip(self, clip: PendingClip) -> None:
        if self._clips is None:
            self._encode_clip(clip)
            return
        try:
            self._clips.put_nowait(clip)
        except queue.Full:
            log.warning("evidence: clip writer behind; clip of alert %s not kept", clip.alert_id)
            self.clip_errors += 1

    def _encode_clip(self, clip: PendingClip) -> None:
        if not clip.frames:
            log.warning("evidence: no frames for the clip of alert %s; none written", clip.alert_id)
            self.clip_errors += 1
            return
        try:
            write_clip(clip.path, clip.frames, self.config.ring_fps, self.config.jpeg_quality, clip.mtime)
            if clip.dated is not None:
                self.clock.wrote(clip.path, clip.dated)
            self.clips_written += 1
        except EvidenceError as exc:
            log.warning("evidence: clip of alert %s not kept: %s", clip.alert_id, exc)
            self.clip_errors += 1


def draw_box(bgr: np.ndarray, box: Box, scale: float, kind: str, alert_id: str) -> None:
    """Draw the alert's box (frame pixels, scaled by ``scale``) and its kind on ``bgr``, in place.

    A box with a non-finite coordinate is logged and skipped: the snapshot matters more than the box.
    """
    try:
        coords = [float(v) * scale for v in box]
    except (TypeError, ValueError):
        coords = []
    if len(coords) != 4 or not all(math.isfinite(v) for v in coords):
        log.warning("evidence: alert %s box %r is not four finite numbers; snapshot without it", alert_id, box)
        return
    h, w = bgr.shape[:2]
    thickness = max(2, round(max(h, w) / 320))
    x1, x2 = sorted((round(min(max(coords[0], 0), w - 1)), round(min(max(coords[2], 0), w - 1))))
    y1, y2 = sorted((round(min(max(coords[1], 0), h - 1)), round(min(max(coords[3], 0), h - 1))))
    cv2.rectangle(bgr, (x1, y1), (x2, y2), BOX_COLOUR, thickness)
    label = kind.encode("ascii", "replace").decode()[:32]
    font_scale = thickness / 3
    (_, text_h), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
    y_text = y1 - thickness if y1 - thickness - text_h >= 0 else min(h - 1, y2 + text_h + thickness)
    cv2.putText(bgr, label, (x1, y_text), cv2.FONT_HERSHEY_SIMPLEX, font_scale, BOX_COLOUR, thickness, cv2.LINE_AA)
