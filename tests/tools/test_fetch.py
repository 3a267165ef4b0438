"""Pinned downloads: a wrong sha256 is refused and nothing unverified lands in the cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.fetch import FetchError, Package, fetch, sha256_file
from tools.fixtures import PHOTOS, ULTRALYTICS, photo


def test_fixture_photos_come_from_verified_archives() -> None:
    path = photo("zidane.jpg")
    assert path.is_file() and path.stat().st_size > 10_000
    assert sha256_file(fetch(ULTRALYTICS)) == ULTRALYTICS.sha256


def test_a_wrong_sha256_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVIGIL_CACHE", str(tmp_path))
    forged = Package(ULTRALYTICS.kind, ULTRALYTICS.name, ULTRALYTICS.version, ULTRALYTICS.filename, "0" * 64, "x")
    with pytest.raises(FetchError, match=rf"{ULTRALYTICS.filename}: sha256 {ULTRALYTICS.sha256}, expected 0+"):
        fetch(forged)
    assert not list(tmp_path.rglob("*.whl")), "an unverified archive was left in the cache"


def test_unknown_package_kind_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVIGIL_CACHE", str(tmp_path))
    with pytest.raises(FetchError, match="unknown package kind 'cran'"):
        fetch(Package("cran", "x", "1", "x.tgz", "1" * 64, "x"))


def test_every_photo_names_a_pinned_package() -> None:
    assert all(len(package.sha256) == 64 for package, _ in PHOTOS.values())
