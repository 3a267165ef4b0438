"""Crash-safe file writes: a hidden temp file in the same folder, fsync, rename, fsync the folder.

A power cut leaves either the old file or the whole new one. Used for evidence, the device key, and the
build tools' outputs (scenarios, gate results, evaluation reports). A temp name carries the id of the
process writing it, and the process knows which of its temp files it is writing now, so a sweep for the
leftovers of a crash (:func:`abandoned`) never takes a file still being written. After a power cut the id
in a leftover's name may belong to a new, unrelated process: a temp file untouched for STALE_TEMP seconds is
a leftover whoever holds that id (no write here leaves its file idle that long).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

TEMP_MARK = ".tmp"
STALE_TEMP = 3600.0  # seconds without a write after which another process's temp file is a leftover
WRITER = re.compile(r"\.([0-9]{1,10})-[0-9a-f]{8}\.tmp")  # the writing process's id in a temp name
_writing: set[str] = set()  # names of the temp files this process is writing now
_writing_lock = threading.Lock()


def temp_path(final: Path) -> Path:
    """A hidden, unique temp name next to ``final`` that keeps its suffix (VideoWriter picks the format by it)
    and names the writing process."""
    return final.with_name(f".{final.stem}.{os.getpid()}-{secrets.token_hex(4)}{TEMP_MARK}{final.suffix}")


def is_temp(name: str) -> bool:
    return name.startswith(".") and TEMP_MARK in name


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True  # another user's process
    return True


def abandoned(path: Path, now: float) -> bool:
    """True for a temp file no one is writing: this process's when it is not writing it now, another
    process's when that process has ended or the file has not changed for STALE_TEMP seconds before ``now``
    (its id reused after a reboot), or the name says no process (written before names did)."""
    found = WRITER.search(path.name)
    if found is None:
        return True
    pid = int(found.group(1))
    if pid == os.getpid():
        with _writing_lock:
            return path.name not in _writing
    if not _alive(pid):
        return True
    try:
        return now - path.stat().st_mtime > STALE_TEMP
    except OSError:  # gone meanwhile: nothing to sweep
        return False


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(final: Path, fill: Callable[[Path], None], *, mode: int | None = None,
                 mtime: float | None = None) -> None:
    """Create ``final``: ``fill(temp)`` writes the temp file, which is then fsynced, given ``mode`` and
    ``mtime`` if set, and renamed. Any failure removes the temp file and re-raises."""
    temp: Path | None = None
    name = ""
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = temp_path(final)
        name = temp.name
        with _writing_lock:
            _writing.add(name)
        fill(temp)
        _fsync(temp)
        if mode is not None:
            os.chmod(temp, mode)
        if mtime is not None:
            os.utime(temp, (mtime, mtime))
        os.replace(temp, final)
        temp = None
        _fsync(final.parent)
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                temp.unlink()
        with _writing_lock:
            _writing.discard(name)


def write_bytes_atomic(final: Path, data: bytes, *, mode: int | None = None, mtime: float | None = None) -> None:
    """Write ``data`` to ``final`` crash-safely (see :func:`write_atomic`)."""

    def fill(temp: Path) -> None:
        with open(temp, "xb") as f:
            if mode is not None:
                os.chmod(temp, mode)  # private from the first byte on (a key must never be readable)
            f.write(data)

    write_atomic(final, fill, mode=mode, mtime=mtime)
