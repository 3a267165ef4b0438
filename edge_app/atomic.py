"""Crash-safe file writes: a hidden temp file in the same folder, fsync, rename, fsync the folder.

A power cut leaves either the old file or the whole new one. Used for evidence, the device key, and the
build tools' outputs (scenarios, gate results, evaluation reports).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path

TEMP_MARK = ".tmp"


def temp_path(final: Path) -> Path:
    """A hidden, unique temp name next to ``final`` that keeps its suffix (VideoWriter picks the format by it)."""
    return final.with_name(f".{final.stem}.{secrets.token_hex(4)}{TEMP_MARK}{final.suffix}")


def is_temp(name: str) -> bool:
    return name.startswith(".") and TEMP_MARK in name


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
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = temp_path(final)
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


def write_bytes_atomic(final: Path, data: bytes, *, mode: int | None = None, mtime: float | None = None) -> None:
    """Write ``data`` to ``final`` crash-safely (see :func:`write_atomic`)."""

    def fill(temp: Path) -> None:
        with open(temp, "xb") as f:
            if mode is not None:
                os.chmod(temp, mode)  # private from the first byte on (a key must never be readable)
            f.write(data)

    write_atomic(final, fill, mode=mode, mtime=mtime)
