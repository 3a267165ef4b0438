"""Evidence settings: the in-RAM frame ring, snapshots, clips, and how much of the SD card they may use."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator


class EvidenceConfig(BaseModel):
    """What the device keeps when an alert starts, and for how long."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="keep snapshots and clips for alerts at all")
    directory: Path = Field(
        Path("evidence"),
        description="where evidence is written; a relative path is resolved against the data dir",
    )
    ring_seconds: float = Field(
        10.0, gt=0, le=120, description="seconds of recent frames kept in RAM (JPEG)"
    )
    ring_max_frames: int = Field(
        100, ge=1, le=1000, description="most frames the RAM ring holds, whatever their age"
    )
    ring_fps: float = Field(
        5.0, gt=0, le=30,
        description="frames per second kept in the ring and written to clips; faster input is thinned",
    )
    pre_seconds: float = Field(3.0, ge=0, le=60, description="seconds of clip before the alert's frame")
    post_seconds: float = Field(3.0, ge=0, le=60, description="seconds of clip after the alert's frame")
    jpeg_quality: int = Field(
        80, ge=30, le=95, description="JPEG quality of ring frames, snapshots and clip frames"
    )
    snapshot_max_side: int = Field(
        1280, ge=160, le=4096,
        description="frames wider or taller than this many pixels are scaled down to it (ring, snapshots, clips)",
    )
    clip: bool = Field(
        default=True, description="also write an MJPG .avi clip from pre_seconds before to post_seconds after"
    )
    quota_mb: float = Field(
        200.0, gt=0, le=1_000_000,
        description="megabytes (10^6 bytes) of evidence files kept; the oldest are deleted first",
    )
    retention_days: float = Field(
        7.0, gt=0, le=3650, description="evidence files older than this many days are deleted"
    )

    @model_validator(mode="after")
    def _pre_roll_fits_in_ring(self) -> EvidenceConfig:
        if self.pre_seconds > self.ring_seconds:
            raise ValueError(
                f"pre_seconds ({self.pre_seconds}) must not exceed ring_seconds ({self.ring_seconds}): "
                "the clip's pre-roll comes from the ring"
            )
        needed = self.pre_seconds * self.ring_fps
        if needed > self.ring_max_frames:
            raise ValueError(
                f"ring_max_frames ({self.ring_max_frames}) is too small for pre_seconds x ring_fps "
                f"({self.pre_seconds} x {self.ring_fps} = {needed:g} frames)"
            )
        return self
