"""The Pi camera source without a Pi: only its error path (picamera2 not importable) is testable here."""

from __future__ import annotations

import sys

import pytest

from edge_app.capture import PicameraSourceConfig, SourceError, build_source
from edge_app.capture.picam import PicameraSource


def test_missing_picamera2_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import picamera2 now raises ImportError, Pi or not
    source = build_source({"type": "picamera2", "width": 640, "height": 480, "fps": 10})
    assert isinstance(source, PicameraSource)
    assert source.live and source.fps == 10
    with pytest.raises(SourceError, match=r"^picamera2 is not installed: install the 'pi' extra on a Raspberry Pi"):
        source.open()
    source.close()  # closing a source that never opened is fine


def test_read_before_open_is_named() -> None:
    with pytest.raises(SourceError, match=r"Pi camera: read before open\(\)"):
        PicameraSource(PicameraSourceConfig()).read()
