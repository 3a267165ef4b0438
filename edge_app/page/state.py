"""What the page shows, shared between the running unit (writer) and the page (reader).

:class:`PageState` is thread-safe and lives in memory: the newest preview JPEG with a sequence number
(streams wait on it), the newest placement verdict, and status fields (pairing, outbox queue, camera, refused
credentials, last errors). When the page runs in the same process as the unit (tests, development) both share
one object.

On the device the page is a separate, unprivileged process. The carrier is then two files in a folder
(``[page] state_dir``; a tmpfs on the device): ``preview.jpg`` and ``state.json``, each replaced whole by
rename, so a reader sees the old file or the new one, never half of one; no fsync (they are ephemeral).
A writer mirrors into the folder (``PageState(mirror=folder)``), :class:`FileState` reads it back on
demand. Files need no protocol, survive either process restarting, and the page's user only needs read
access to the folder; a socket would add a server to the unit for nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

FRAME_FILE, STATE_FILE = "preview.jpg", "state.json"
MAX_ERRORS = 10
MAX_STATE_FILE = 256 * 1024  # bytes
MAX_FRAME_FILE = 4 * 1024 * 1024
POLL = 0.05  # seconds between looks at the files while a stream waits


def replace_file(final: Path, data: bytes) -> None:
    """Write ``data`` to a hidden temp file beside ``final`` and rename it over ``final`` (no fsync)."""
    temp = final.with_name(f".{final.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        with open(temp, "wb") as f:
            f.write(data)
        os.chmod(temp, 0o640)
        os.replace(temp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


class PageState:
    """The newest preview frame, placement verdict and status; ``mirror`` also writes them to that folder."""

    def __init__(self, mirror: Path | None = None) -> None:
        self.mirror = mirror
        if mirror is not None:
            mirror.mkdir(parents=True, exist_ok=True)
        self._changed = threading.Condition()
        self._seq = 0
        self._jpeg: bytes | None = None
        self._frame_at: float | None = None  # wall time of the newest frame
        self._placement: dict[str, Any] | None = None
        self._status: dict[str, Any] = {"pairing": "unpaired", "session": None, "exam": None, "queue": None,
                                        "camera": None, "versions": {}, "credentials_refused": None}
        self._errors: deque[dict[str, Any]] = deque(maxlen=MAX_ERRORS)
        self._updated: float | None = None
        self.closed = False

    # -- writer (the unit) --------------------------------------------------------------------------------

    def publish_frame(self, jpeg: bytes) -> None:
        """The newest preview (a JPEG with the overlay drawn in); wakes every waiting stream."""
        with self._changed:
            self._jpeg, self._seq, self._frame_at = jpeg, self._seq + 1, time.time()
            self._changed.notify_all()
        if self.mirror is not None:
            replace_file(self.mirror / FRAME_FILE, jpeg)

    def publish_placement(self, verdict: dict[str, Any]) -> None:
        with self._changed:
            self._placement = dict(verdict)
        self._save()

    def update_status(self, **fields: Any) -> None:
        with self._changed:
            self._status.update(fields)
        self._save()

    def add_error(self, text: str) -> None:
        with self._changed:
            self._errors.append({"at": round(time.time(), 3), "text": text[:300]})
        self._save()

    def _save(self) -> None:
        with self._changed:
            self._updated = time.time()
            snapshot = self._snapshot()
        if self.mirror is not None:
            replace_file(self.mirror / STATE_FILE, json.dumps(snapshot).encode("utf-8"))

    def _snapshot(self) -> dict[str, Any]:
        return {"placement": self._placement, "status": dict(self._status), "errors": list(self._errors),
                "updated": self._updated}

    def close(self) -> None:
        """No more frames: every stream ends."""
        with self._changed:
            self.closed = True
            self._changed.notify_all()

    # -- reader (the page) --------------------------------------------------------------------------------

    def frame(self) -> tuple[int, bytes | None]:
        """The newest preview and its sequence number (0: none yet)."""
        with self._changed:
            return self._seq, self._jpeg

    def wait_frame(self, after: int, timeout: float) -> tuple[int, bytes | None]:
        """The first preview newer than ``after``, waiting up to ``timeout`` seconds (then the current one)."""
        with self._changed:
            self._changed.wait_for(lambda: self._seq > after or self.closed, timeout)
            return self._seq, self._jpeg

    def frame_age(self) -> float | None:
        with self._changed:
            return None if self._frame_at is None else max(0.0, time.time() - self._frame_at)

    def snapshot(self) -> dict[str, Any]:
        """Placement verdict, status fields, last errors and when the unit last wrote (wall seconds)."""
        with self._changed:
            return self._snapshot()


class FileState(PageState):
    """The page process's view of what the unit mirrors into ``folder`` (read again whenever it changes)."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder
        self._frame_stamp: tuple[int, int] | None = None
        self._state_stamp: tuple[int, int] | None = None
        self._read_lock = threading.Lock()

    def _stamp(self, path: Path) -> tuple[int, int] | None:
        try:
            info = path.stat()
        except OSError:
            return None
        return info.st_mtime_ns, info.st_size

    def _refresh(self) -> None:
        with self._read_lock:
            stamp = self._stamp(self.folder / FRAME_FILE)
            if stamp is not None and stamp != self._frame_stamp and stamp[1] <= MAX_FRAME_FILE:
                with contextlib.suppress(OSError):
                    jpeg = (self.folder / FRAME_FILE).read_bytes()
                    with self._changed:
                        self._jpeg, self._seq, self._frame_at = jpeg, self._seq + 1, stamp[0] / 1e9
                    self._frame_stamp = stamp
            stamp = self._stamp(self.folder / STATE_FILE)
            if stamp is not None and stamp != self._state_stamp and stamp[1] <= MAX_STATE_FILE:
                try:
                    data = json.loads((self.folder / STATE_FILE).read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    return  # a torn read cannot happen (rename), an unreadable file is retried next time
                with self._changed:
                    self._placement = data.get("placement")
                    self._status.update(data.get("status") or {})
                    self._errors = deque(data.get("errors") or [], maxlen=MAX_ERRORS)
                    self._updated = data.get("updated")
                self._state_stamp = stamp

    def frame(self) -> tuple[int, bytes | None]:
        self._refresh()
        return super().frame()

    def wait_frame(self, after: int, timeout: float) -> tuple[int, bytes | None]:
        deadline = time.monotonic() + timeout
        while True:
            seq, jpeg = self.frame()
            left = deadline - time.monotonic()
            if seq > after or self.closed or left <= 0:
                return seq, jpeg
            with self._changed:  # close() wakes this at once
                self._changed.wait(min(POLL, left))

    def frame_age(self) -> float | None:
        self._refresh()
        return super().frame_age()

    def snapshot(self) -> dict[str, Any]:
        self._refresh()
        return super().snapshot()
