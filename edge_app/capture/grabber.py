"""Reads a frame source on a background thread and keeps only the newest frame (a one-slot mailbox).

Live and realtime sources overwrite a frame nobody took (counted in ``dropped``), so the analysis always
works on the freshest image however slow it is. Files and non-realtime scenarios instead make the reader
wait until the slot is free, so every frame is analysed and evaluation is deterministic.
"""

from __future__ import annotations

import logging
import threading
import time

from edge_app.capture.base import Frame, FrameSource
from edge_app.capture.pacing import Clock

log = logging.getLogger(__name__)


class LatestFrameGrabber:
    """Background reader with a one-slot mailbox; start() opens the source, the reader thread closes it."""

    def __init__(self, source: FrameSource, *, drop: bool | None = None, clock: Clock = time.monotonic,
                 join_timeout: float = 2.0) -> None:
        """``drop``: overwrite untaken frames (default: when the source is live or realtime)."""
        self.source = source
        self.drop = (source.live or source.realtime) if drop is None else drop
        self._clock = clock
        self._join_timeout = join_timeout
        self._cond = threading.Condition()
        self._slot: Frame | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._running = False
        self._read_started: float | None = None  # clock() when the pending source.read() began
        self._dropped = 0
        self._frames = 0
        self._ended = False
        self._error: BaseException | None = None

    @property
    def dropped(self) -> int:
        """Frames overwritten before anyone took them."""
        return self._dropped

    @property
    def frames(self) -> int:
        """Frames read from the source so far."""
        return self._frames

    @property
    def ended(self) -> bool:
        """The source reported the end of its stream."""
        return self._ended

    @property
    def error(self) -> BaseException | None:
        """What the source raised, which stopped the reader (None while healthy)."""
        return self._error

    @property
    def running(self) -> bool:
        """The reader thread is reading (not yet ended, failed or stopped)."""
        return self._running

    def start(self) -> None:
        """Open the source (its SourceError propagates) and start the reader thread."""
        if self._thread is not None:
            raise RuntimeError("LatestFrameGrabber.start() called twice")
        self.source.open()
        self._running = True
        self._thread = threading.Thread(target=self._run, name=f"grab-{self.source.type}", daemon=True)
        self._thread.start()

    def get(self, timeout: float) -> Frame | None:
        """The newest frame not yet returned, waiting up to ``timeout`` s; None on timeout or once reading is over."""
        with self._cond:
            self._cond.wait_for(lambda: self._slot is not None or not self._running, timeout)
            frame, self._slot = self._slot, None
            self._cond.notify_all()
            return frame

    def stalled(self, now: float, stall_after: float) -> bool:
        """True when the source has been asked for a frame for more than ``stall_after`` s without one (``now``
        on the grabber's clock, time.monotonic() by default). Waiting for the consumer is not a stall."""
        started = self._read_started
        return self._running and started is not None and now - started > stall_after

    def stop(self) -> bool:
        """Stop the reader and wait for it up to the join timeout; False if it is still blocked in the source
        (it is a daemon thread and closes the source as soon as that read returns)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is None:
            return True
        self._thread.join(self._join_timeout)
        return not self._thread.is_alive()

    def __enter__(self) -> LatestFrameGrabber:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._read_started = self._clock()
                frame = self.source.read()
                self._read_started = None
                if frame is None:
                    self._ended = True
                    return
                if not self._deliver(frame):
                    return
        except BaseException as exc:  # the consumer sees it through .error; the thread must not die silently
            log.warning("frame source %s failed: %s", self.source.type, exc)
            self._error = exc
        finally:
            self._read_started = None
            with self._cond:
                self._running = False
                self._cond.notify_all()
            try:
                self.source.close()
            except Exception as exc:
                log.warning("closing frame source %s failed: %s", self.source.type, exc)

    def _deliver(self, frame: Frame) -> bool:
        """Put a frame in the slot; False when stopped while waiting for the slot to free."""
        with self._cond:
            if self.drop:
                if self._slot is not None:
                    self._dropped += 1
            else:
                self._cond.wait_for(lambda: self._slot is None or self._stop.is_set())
                if self._stop.is_set():
                    return False
            self._slot = frame
            self._frames += 1
            self._cond.notify_all()
            return True
