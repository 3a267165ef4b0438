"""EvidenceConfig: the defaults the loop relies on, and errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from edge_app.evidence import EvidenceConfig


def test_defaults() -> None:
    c = EvidenceConfig()
    assert (c.enabled, c.directory, c.clip) == (True, Path("evidence"), True)
    assert (c.ring_seconds, c.ring_max_frames, c.ring_fps) == (10, 100, 5)
    assert (c.pre_seconds, c.post_seconds, c.jpeg_quality, c.snapshot_max_side) == (3, 3, 80, 1280)
    assert (c.quota_mb, c.retention_days) == (200, 7)


def test_every_field_is_described() -> None:
    assert all(f.description for f in EvidenceConfig.model_fields.values())


@pytest.mark.parametrize("quality", [29, 96])
def test_jpeg_quality_outside_30_to_95_is_refused(quality: int) -> None:
    with pytest.raises(ValidationError, match="jpeg_quality"):
        EvidenceConfig(jpeg_quality=quality)


def test_unknown_field_is_refused() -> None:
    with pytest.raises(ValidationError, match="quota_gb"):
        EvidenceConfig.model_validate({"quota_gb": 1})


def test_pre_roll_longer_than_the_ring_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"pre_seconds \(12.0\) must not exceed ring_seconds \(10.0\)"):
        EvidenceConfig(pre_seconds=12)


def test_pre_roll_needing_more_frames_than_the_ring_holds_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"ring_max_frames \(10\) is too small .* = 15 frames"):
        EvidenceConfig(ring_max_frames=10)
