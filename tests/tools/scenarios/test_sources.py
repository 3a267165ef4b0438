"""Real media from pinned packages and the shared phone photos, with clear errors when something is missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tools.fetch import fetch, sha256_file
from tools.scenarios import sources


def test_video_frames_are_decoded_by_index() -> None:
    frames = sources.video_frames_at("franck.webm", frozenset({0, 2508}))
    assert sorted(frames) == [0, 2508]
    assert frames[0].shape == (288, 360, 3) and frames[0].dtype == np.uint8
    assert not np.array_equal(frames[0], frames[2508])
    with pytest.raises(sources.SourceMissing, match=r"video franck.webm has \d+ frames; frame 99999 was asked for"):
        sources.video_frames_at("franck.webm", frozenset({99999}))


def test_sounds_and_photos_come_from_verified_packages() -> None:
    samples, rate = sources.sound("boom.wav")
    assert rate == 11025 and 1.0 < samples.size / rate < 1.3 and np.abs(samples).max() <= 1.0
    package, _ = sources.SOUNDS["boom.wav"]
    assert package is sources.PYGAME
    assert sha256_file(fetch(package)) == package.sha256
    assert sources.photo_rgb("book1.png").shape == (240, 320, 3)


def test_unknown_media_is_refused_by_name() -> None:
    with pytest.raises(sources.SourceMissing, match=r"unknown photo 'nope.png'; expected one of"):
        sources.photo_rgb("nope.png")
    with pytest.raises(sources.SourceMissing, match=r"unknown media 'nope.wav'"):
        sources.sound("nope.wav")


def test_phone_photos_missing_or_unlabelled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVIGIL_FIND_PHONE", str(tmp_path))
    with pytest.raises(sources.SourceMissing, match=r"needs the labelled phone photos in .*that folder is missing"):
        sources.phone_photo("1.jpg")
    assert sources.phone_inputs_digest() == b"absent"
    (tmp_path / "labels.txt").write_text("2.jpg 0.5 0.5\n")
    with pytest.raises(sources.SourceMissing, match=r"labels.txt: no label for 1.jpg"):
        sources.phone_photo("1.jpg")
    with pytest.raises(sources.SourceMissing, match=r"2.jpg: missing or unreadable phone photo"):
        sources.phone_photo("2.jpg")
