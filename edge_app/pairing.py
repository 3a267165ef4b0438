"""Pairing the unit with a PC exam session: find the pairing QR code on the PC screen, or take a typed code.

While unpaired, the unit looks for the QR code the PC exam client shows (``INVIGIL:1:<code>``, see
:func:`edge_app.protocol.commands.qr_payload`) in its camera frames; it sees the screen from about 45° to
the side, so the symbol is small and foreshortened. :class:`QrPairingScanner` works on a grey copy at most
once per ``every`` seconds of media time: it decodes the few regions dense with strong black/white edges
(:func:`qr_candidates`; a crop is cheap, and OpenCV reads a small tilted code there far more reliably than
in a whole frame full of face and hair), each crop at 2x only when the 1x try failed, then the whole frame
for a code too large for that search. Other QR codes in view are ignored.

Staff can also type the code on the unit (``python -m edge_app pair CODE``): :func:`write_pair_code` leaves it
in ``<data_dir>/pair_code`` and the running session takes it with :func:`take_pair_code`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import time
from pathlib import Path

import cv2
import numpy as np

from edge_app.atomic import write_bytes_atomic
from edge_app.protocol import ProtocolError
from edge_app.protocol.commands import normalize_code, parse_qr, qr_payload

log = logging.getLogger(__name__)
PAIR_FILE = "pair_code"
MAX_PAIR_FILE = 256  # bytes; a code is 8 characters
UPSCALE_MARGIN = 0.25  # share of the located symbol's size added around it before the 2x retry
MAX_UPSCALE = 480  # px; a region larger than this is not retried at twice the size
EDGE_CONTRAST = 80  # grey levels between neighbours that make a strong (module) edge
DENSITY_WINDOW = 15  # px
MIN_DENSITY = 0.25  # share of strong-edge pixels around a point of a candidate region
MIN_CANDIDATE = 24  # px, the smallest candidate side
CROP_MARGIN = 0.15
MAX_CANDIDATES = 3


class QrPairingScanner:
    """Finds the pairing code in camera frames, at most once per ``every`` seconds of frame time."""

    def __init__(self, every: float = 0.5) -> None:
        if not every >= 0:
            raise ValueError(f"every must be >= 0 seconds, not {every}")
        self.every = every
        self.last_ms: float | None = None  # wall time the last decode attempt took
        self.scans = 0  # decode attempts so far
        self.last_text: str | None = None  # what the last scan decoded, ours or another QR code's text
        self._last_t: float | None = None
        self._detector = cv2.QRCodeDetector()

    def scan(self, frame_rgb: np.ndarray, t: float) -> str | None:
        """The normalized pairing code of an Invigil QR code in an RGB frame (``Frame.image``; a grey image
        works too), or None: none seen, another QR code, or not due yet (``t`` in seconds, the frame's time)."""
        if self._last_t is not None and self._last_t <= t < self._last_t + self.every:
            return None
        self._last_t = t  # a time before the last one is a new stream: scan at once
        self.last_text = None
        begun = time.perf_counter()
        try:
            return self._decode(frame_rgb)
        finally:
            self.last_ms = (time.perf_counter() - begun) * 1000.0
            self.scans += 1

    def _decode(self, frame: np.ndarray) -> str | None:
        grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        for left, top, right, bottom in qr_candidates(grey):
            code = self._read(grey[top:bottom, left:right])
            if code is not None:
                return code
        return self._read(grey, whole=True)  # a large code the texture search did not frame

    def _read(self, grey: np.ndarray, whole: bool = False) -> str | None:
        """Decode ``grey``; when a symbol is located but not decoded, retry its region at twice the size."""
        text, points = self._detect(grey)
        if text:
            self.last_text = text
            code = parse_qr(text)
            return code if code is not None else self._multi(grey)  # another QR code: look for ours beside it
        if points is None:
            if whole:
                return None
            points = np.array([(0, 0), (grey.shape[1], grey.shape[0])], np.float32)  # a candidate: all of it
        region = _grow(points, grey.shape[:2], UPSCALE_MARGIN)
        if region is None or max(region[2] - region[0], region[3] - region[1]) > MAX_UPSCALE:
            return None
        left, top, right, bottom = region
        bigger = cv2.resize(grey[top:bottom, left:right], None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)
        text, _ = self._detect(bigger)
        if not text:
            return None
        self.last_text = text
        return parse_qr(text)

    def _detect(self, grey: np.ndarray) -> tuple[str, np.ndarray | None]:
        try:
            text, points, _ = self._detector.detectAndDecode(grey)
        except cv2.error:
            return "", None
        return text or "", points

    def _multi(self, grey: np.ndarray) -> str | None:
        try:
            ok, texts, _, _ = self._detector.detectAndDecodeMulti(grey)
        except cv2.error:
            return None
        codes = [parse_qr(text) for text in texts] if ok else []
        found = next((code for code in codes if code is not None), None)
        if found is not None:
            self.last_text = qr_payload(found)
        return found


def qr_candidates(grey: np.ndarray, limit: int = MAX_CANDIDATES) -> list[tuple[int, int, int, int]]:
    """Regions (left, top, right, bottom) dense with strong black/white edges, as a QR code is, most first."""
    edges = cv2.morphologyEx(grey, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > EDGE_CONTRAST
    density = cv2.boxFilter(edges.astype(np.float32), -1, (DENSITY_WINDOW, DENSITY_WINDOW))
    mask = cv2.dilate((density > MIN_DENSITY).astype(np.uint8), np.ones((DENSITY_WINDOW, DENSITY_WINDOW), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
    found = []
    for x, y, w, h, _ in stats[1:count]:
        if w >= MIN_CANDIDATE and h >= MIN_CANDIDATE and 1 / 3 < w / h < 3:
            region = _grow(np.array([(x, y), (x + w, y + h)], np.float32), grey.shape[:2], CROP_MARGIN)
            if region is not None:
                found.append((int(edges[y:y + h, x:x + w].sum()), region))
    found.sort(key=lambda item: -item[0])
    return [region for _, region in found[:limit]]


def _grow(points: np.ndarray, shape: tuple[int, ...], margin: float) -> tuple[int, int, int, int] | None:
    """The bounding box of ``points`` grown by ``margin`` of its size (+4 px), clipped to the image."""
    corners = points.reshape(-1, 2)
    (x1, y1), (x2, y2) = corners.min(axis=0), corners.max(axis=0)
    mx, my = (x2 - x1) * margin + 4, (y2 - y1) * margin + 4
    height, width = shape[:2]
    left, top = max(0, int(x1 - mx)), max(0, int(y1 - my))
    right, bottom = min(width, int(np.ceil(x2 + mx))), min(height, int(np.ceil(y2 + my)))
    if right - left < 8 or bottom - top < 8:
        return None
    return left, top, right, bottom


def write_pair_code(data_dir: Path, typed: str) -> str:
    """Leave a code staff typed (any case, spaces, dashes) for the running session; returns its canonical form.
    Raises ProtocolError for anything that is not a pairing code."""
    code = normalize_code(typed)
    write_bytes_atomic(Path(data_dir) / PAIR_FILE, code.encode("ascii") + b"\n")
    return code


def take_pair_code(data_dir: Path) -> str | None:
    """The code left by :func:`write_pair_code`, removing the file; None when there is none. A file that holds
    no valid code is removed with a warning. A code written while this runs is kept for the next call."""
    path = Path(data_dir) / PAIR_FILE
    taken = path.with_name(f".{PAIR_FILE}.{secrets.token_hex(4)}.taking")
    try:
        os.replace(path, taken)  # whatever is there now is ours; a later write lands in a new file
    except FileNotFoundError:
        return None
    try:
        with open(taken, "rb") as f:
            data = f.read(MAX_PAIR_FILE + 1)
    finally:
        with contextlib.suppress(OSError):
            taken.unlink()
    try:
        if len(data) > MAX_PAIR_FILE:
            raise ProtocolError("bad_code", f"{len(data)}+ bytes, a code is {MAX_PAIR_FILE} at most")
        return normalize_code(data.decode("ascii"))
    except (UnicodeDecodeError, ProtocolError) as exc:
        log.warning("removed %s: it holds no pairing code (%s)", path, exc)
        return None
