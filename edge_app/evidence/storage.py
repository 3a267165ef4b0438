"""Evidence files on the SD card: crash-safe writes, and retention and quota that delete the oldest first.

Layout: ``<directory>/<YYYYMMDD>/<alert_id>.jpg`` and ``.avi`` (UTC date). A file is written under a
hidden temp name in the same folder, fsynced, then renamed over its final name, so a power cut leaves
either the whole file or none; leftover temp files (of a process that ended, of this one that is not
writing them now, or idle for an hour under a process id taken again after a reboot:
:func:`edge_app.atomic.abandoned`) are removed by :func:`enforce`, never a clip still being written. Only
names of that layout are ever deleted, so a misconfigured directory cannot lose anyone else's files. Ages
for retention hold when the clock is stepped (:mod:`edge_app.evidence.dating`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from edge_app import atomic
from edge_app.atomic import abandoned, is_temp
from edge_app.evidence.dating import FLOOR, wall_age
from edge_app.evidence.errors import EvidenceError
from edge_app.protocol import evidence_digest

log = logging.getLogger(__name__)

ALERT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
DAY_DIR = re.compile(r"\d{8}")
SUFFIXES = (".jpg", ".avi")


def check_alert_id(alert_id: object) -> str:
    """``alert_id`` if it is a safe file name (1-64 letters, digits, ``_``, ``-``), else :class:`EvidenceError`."""
    if not isinstance(alert_id, str) or not ALERT_ID.fullmatch(alert_id):
        raise EvidenceError(
            f"alert id {alert_id!r} is not 1-64 letters, digits, '_' or '-' starting with a letter or digit"
        )
    return alert_id


def evidence_path(directory: Path, alert_id: str, suffix: str, now_wall: float) -> Path:
    """Where an alert's ``suffix`` file goes: ``<directory>/<YYYYMMDD of now_wall, UTC>/<alert_id><suffix>``."""
    day = datetime.fromtimestamp(now_wall, tz=UTC).strftime("%Y%m%d")
    return directory / day / f"{check_alert_id(alert_id)}{suffix}"


def write_atomic(final: Path, fill: Callable[[Path], None], mtime: float) -> None:
    """Create ``final`` crash-safely (:func:`edge_app.atomic.write_atomic`) dated ``mtime``; any failure
    removes the temp file and raises :class:`EvidenceError` naming the file and the reason."""
    try:
        atomic.write_atomic(final, fill, mtime=mtime)
    except OSError as exc:
        raise EvidenceError(f"cannot write {final}: {exc.strerror or exc}") from exc


def write_bytes_atomic(final: Path, data: bytes, mtime: float) -> None:
    """Write ``data`` to ``final`` crash-safely (see :func:`write_atomic`)."""
    try:
        atomic.write_bytes_atomic(final, data, mtime=mtime)
    except OSError as exc:
        raise EvidenceError(f"cannot write {final}: {exc.strerror or exc}") from exc


@dataclass(frozen=True)
class StoredFile:
    path: Path
    size: int
    mtime: float

    @property
    def order(self) -> tuple[float, int, str]:
        """Deletion order: oldest first; of one alert, the clip before the snapshot whose digest was sent."""
        return (self.mtime, 0 if self.path.suffix == ".avi" else 1, self.path.name)


def _remove(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False
    except OSError as exc:
        log.warning("evidence: cannot delete %s: %s", path, exc.strerror or exc)
        return False


def _redate(f: StoredFile, mtime: float) -> StoredFile:
    """``f`` dated ``mtime`` (a file whose date could not be believed: retention counts from now)."""
    try:
        os.utime(f.path, (mtime, mtime))
    except OSError as exc:
        log.warning("evidence: cannot re-date %s: %s", f.path, exc.strerror or exc)
        return f
    log.info("evidence: %s was dated %.0f, which cannot be right; dated now", f.path, f.mtime)
    return StoredFile(f.path, f.size, mtime)


def scan(directory: Path) -> tuple[list[StoredFile], list[Path]]:
    """Evidence files under ``directory`` and leftover temp files; other names are ignored."""
    files: list[StoredFile] = []
    temps: list[Path] = []
    try:
        days = [d for d in directory.iterdir() if DAY_DIR.fullmatch(d.name) and d.is_dir()]
    except OSError:
        return files, temps
    for day in days:
        try:
            entries = list(os.scandir(day))
        except OSError as exc:
            log.warning("evidence: cannot list %s: %s", day, exc.strerror or exc)
            continue
        for entry in entries:
            path = Path(entry.path)
            if is_temp(entry.name):
                temps.append(path)
            elif path.suffix in SUFFIXES and ALERT_ID.fullmatch(path.stem):
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                files.append(StoredFile(path, st.st_size, st.st_mtime))
    return files, temps


Age = Callable[[StoredFile], float | None]  # seconds since a file was written; None: cannot be told


def enforce(directory: Path, now_wall: float, retention_seconds: float, quota_bytes: float,
            age: Age | None = None) -> int:
    """Delete abandoned temp files, files older than the retention, then the oldest until under quota.

    ``age`` (default: by the wall clock, :func:`edge_app.evidence.dating.wall_age`) tells a file's age; a
    file whose age cannot be told is kept and, once the clock is set, dated ``now_wall``. Returns how many
    files were removed. Never raises for file-system trouble: it logs and goes on.
    """
    files, temps = scan(directory)
    removed = sum(_remove(t) for t in temps if abandoned(t, now_wall))
    aged = age or (lambda f: wall_age(now_wall, f.mtime))
    kept: list[StoredFile] = []
    for f in sorted(files, key=lambda f: f.order):
        seconds = aged(f)
        if seconds is not None and seconds > retention_seconds:
            removed += _remove(f.path)
            continue
        if seconds is None and now_wall >= FLOOR:
            f = _redate(f, now_wall)
        kept.append(f)
    total = sum(f.size for f in kept)
    for f in sorted(kept, key=lambda f: f.order):
        if total <= quota_bytes:
            break
        if _remove(f.path):
            removed += 1
            total -= f.size
    for day in {f.path.parent for f in files} | {t.parent for t in temps}:
        with contextlib.suppress(OSError):
            day.rmdir()  # only succeeds when empty
    return removed


def purge(directory: Path, digests: set[str]) -> list[Path]:
    """Delete the snapshots whose digest (an event's ``e``: :func:`edge_app.protocol.evidence_digest`) is in
    ``digests``, each with its alert's clip; digests of no file here are ignored. The files removed."""
    files, _temps = scan(directory)
    removed: list[Path] = []
    for f in files:
        if f.path.suffix != ".jpg":
            continue
        try:
            digest = evidence_digest(hashlib.sha256(f.path.read_bytes()).hexdigest())
        except OSError:
            continue
        if digest in digests:
            for path in (f.path, f.path.with_suffix(".avi")):
                if _remove(path):
                    removed.append(path)
    for day in {f.path.parent for f in files}:
        with contextlib.suppress(OSError):
            day.rmdir()  # only succeeds when empty
    return removed
