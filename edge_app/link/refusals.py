"""The count of alerts the outbox refused (a full disk), kept across restarts in a file reserved up front.

A full disk is exactly when a new file (or a temp file to rename) cannot be written, so the file is made
once, when the outbox opens and there is space: two fixed 64-byte slots. Each refusal overwrites the older
slot in place (no block to allocate) with a numbered, checksummed record and fsyncs it; a torn write spoils
only the slot being written, and reading takes the valid record with the highest number. Once the report is
stored, the outbox records that record's number as reported in its own database, in the transaction that
stores the report, so a restart between the two neither loses the report nor sends it twice.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from edge_app.atomic import write_bytes_atomic

log = logging.getLogger(__name__)
SLOT = 64
RECORD = struct.Struct("<4sQIdd16s")  # magic, number, count, first, last, reason; then a CRC-32 of these
MAGIC = b"IVRF"


@dataclass(frozen=True)
class Refused:
    """Events the outbox could not store: how many, the first and last time (s since 1970), and why."""

    count: int
    first: float
    last: float
    reason: str  # disk_full or store_error (edge_app.protocol.REFUSAL_REASONS)


def pack(number: int, refused: Refused) -> bytes:
    body = RECORD.pack(MAGIC, number, refused.count, refused.first, refused.last, refused.reason.encode("ascii"))
    return (body + struct.pack("<I", zlib.crc32(body))).ljust(SLOT, b"\0")


def unpack(slot: bytes) -> tuple[int, Refused] | None:
    """A slot's (number, refusals), or None for an empty or torn slot."""
    body, crc = slot[:RECORD.size], slot[RECORD.size:RECORD.size + 4]
    if len(crc) < 4 or struct.unpack("<I", crc)[0] != zlib.crc32(body):
        return None
    magic, number, count, first, last, reason = RECORD.unpack(body)
    if magic != MAGIC:
        return None
    return number, Refused(count, first, last, reason.rstrip(b"\0").decode("ascii", "replace"))


class RefusalLog:
    """The refusals not reported yet, in memory and in ``path``; ``reported`` is the number of the last record
    reported (kept by the outbox). Without its file (no space even when it opened) it counts in memory only."""

    def __init__(self, path: Path, reported: int) -> None:
        self.path = path
        self.number = reported  # of the current record
        self.current: Refused | None = None
        self._fd: int | None = None
        try:
            if not path.exists() or path.stat().st_size != 2 * SLOT:
                write_bytes_atomic(path, bytes(2 * SLOT), mode=0o600)  # reserved while there is space
            self._fd = os.open(path, os.O_RDWR)
            records = [found for at in (0, SLOT) if (found := unpack(os.pread(self._fd, SLOT, at))) is not None]
        except OSError as exc:
            log.warning("refusal count %s unavailable, counting in memory only: %s", path, exc)
            return
        if records:
            number, refused = max(records, key=lambda record: record[0])
            self.number = max(number, reported)
            if number > reported and refused.count > 0:
                self.current = refused

    def add(self, when: float, reason: str) -> Refused:
        """Count one refusal and save the count (in place, fsynced) before returning it."""
        was = self.current
        self.current = Refused(1, when, when, reason) if was is None else Refused(
            was.count + 1, was.first, when, was.reason if was.reason == reason else "store_error")
        self.number += 1
        if self._fd is not None:
            try:
                os.pwrite(self._fd, pack(self.number, self.current), (self.number % 2) * SLOT)
                os.fsync(self._fd)
            except OSError as exc:
                log.warning("refusal count not saved to %s: %s", self.path, exc)
        return self.current

    def reported(self) -> None:
        """The current record is reported (the outbox has stored its number with the report)."""
        self.current = None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
