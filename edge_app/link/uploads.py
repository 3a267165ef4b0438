"""Evidence snapshots go to the bridge over HTTP, after their event: a small SQLite queue and one thread.

The bridge accepts a snapshot only once a stored event of this unit carries its digest (HTTP 409 until
then), so the uploader retries with backoff; 200/201 removes the row; another 4xx drops it with a warning
(it will never be accepted); a missing file is dropped too. Server errors and an unreachable bridge are
retried. The queue is a SQLite file, so it survives a restart. The snapshot file stays under the evidence
quota either way. Retries are timed on the monotonic clock (a Pi without a real-time clock steps its wall
clock at boot: a retry due "in a year" would never come); a restart makes every queued snapshot due at once,
since the last run's monotonic times mean nothing to this one.
"""

from __future__ import annotations

import http.client
import logging
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)
TIMEOUT = 10.0
RETRY_MIN, RETRY_MAX = 1.0, 60.0


class EvidenceUploader:
    """POSTs queued snapshots to ``<base_url>/api/v1/evidence`` from one thread, between start() and stop()."""

    def __init__(self, db_path: Path, base_url: str, device_id: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.url, self.device_id, self.clock = base_url.rstrip("/") + "/api/v1/evidence", device_id, clock
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE IF NOT EXISTS uploads (path TEXT PRIMARY KEY, tries INTEGER NOT NULL DEFAULT 0,"
                        " due REAL NOT NULL DEFAULT 0)")
        self.db.execute("UPDATE uploads SET due = 0")  # due times (monotonic) of an earlier run: all due now
        self._lock = threading.Lock()
        self._stop, self._wake = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self.uploaded = 0  # snapshots the bridge accepted
        self.failed = 0  # attempts that will be retried (409, server errors, bridge unreachable)
        self._closed = False

    def add(self, path: Path) -> None:
        """Queue a snapshot for upload (once: the same path again is ignored)."""
        with self._lock:
            self.db.execute("INSERT OR IGNORE INTO uploads (path) VALUES (?)", (str(path),))
        self._wake.set()

    def pending(self) -> int:
        with self._lock:
            return int(self.db.execute("SELECT COUNT(*) FROM uploads").fetchone()[0])

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="evidence-upload", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:  # a thread still inside a slow request finds the queue closed and ends
            self._closed = True
            self.db.close()

    @property
    def running(self) -> bool:
        """The upload thread is alive (it may outlive stop() while a request is under way)."""
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with self._lock:
                    if self._closed:
                        return
                    rows = self.db.execute("SELECT path, tries FROM uploads WHERE due <= ? ORDER BY due LIMIT 20",
                                           (self.clock(),)).fetchall()
                for path, tries in rows:
                    if self._stop.is_set():
                        return
                    self._one(Path(path), tries)
            except Exception:  # a failing queue file: the thread goes on and tries again
                log.exception("evidence uploads: unexpected error")
            self._wake.wait(RETRY_MIN)
            self._wake.clear()

    def _done(self, path: Path) -> None:
        with self._lock:
            if not self._closed:
                self.db.execute("DELETE FROM uploads WHERE path = ?", (str(path),))

    def _one(self, path: Path, tries: int) -> None:
        try:
            data = path.read_bytes()
        except OSError as exc:  # removed by retention, or unreadable: nothing to send
            log.warning("evidence %s not uploaded: %s", path, exc)
            self._done(path)
            return
        request = urllib.request.Request(self.url, data=data, method="POST", headers={
            "Content-Type": "image/jpeg", "X-Invigil-Device": self.device_id})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                response.read()
            self.uploaded += 1
            self._done(path)
            return
        except urllib.error.HTTPError as exc:
            if exc.code != 409 and 400 <= exc.code < 500:
                log.warning("evidence %s refused by the bridge (%d): %s", path.name, exc.code, exc.read()[:200])
                self._done(path)
                return
        except (OSError, http.client.HTTPException) as exc:  # unreachable, reset, or not speaking HTTP
            log.info("evidence upload of %s failed, will retry: %s", path.name, exc)
        self.failed += 1
        delay = min(RETRY_MAX, RETRY_MIN * 2 ** min(tries, 10))
        with self._lock:
            if self._closed:
                return
            self.db.execute("UPDATE uploads SET tries = tries + 1, due = ? WHERE path = ?",
                            (self.clock() + delay, str(path)))
