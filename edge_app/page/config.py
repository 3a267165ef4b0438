"""Settings of the unit's own page (``[page]`` in the unit's config); loads neither Flask nor OpenCV.

    [page]
    host = "192.168.1.40"   # the LAN interface's address; 127.0.0.1 (the default) serves this machine only
    port = 8080
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

WILDCARDS = ("0.0.0.0", "::", "")


class PageConfig(BaseModel):
    """Where the page listens, and how the running unit feeds it."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="the running unit publishes its preview and verdict for the page")
    host: str = Field("127.0.0.1", description="address to listen on: 127.0.0.1, or the LAN interface's address "
                      "(never every interface)")
    port: int = Field(8080, ge=1024, le=65535, description="TCP port (unprivileged)")
    state_dir: Path | None = Field(None, description="where the unit leaves the preview frame and its state for the "
                                   "page process (None: <data_dir>/page; on the device a tmpfs such as the "
                                   "service's runtime directory, so preview frames never wear the SD card)")
    requests_dir: Path | None = Field(None, description="where the page leaves Wi-Fi and bridge requests for the "
                                      "privileged helper (None: <data_dir>/requests)")
    preview_fps: float = Field(5.0, gt=0, le=30, description="preview frames per second the unit encodes")
    preview_width: int = Field(640, ge=160, le=1920, description="preview width in pixels (height keeps the aspect)")
    placement_hz: float = Field(2.0, gt=0, le=10, description="analysed frames per second for the live placement "
                                "check while the placement is not usable")
    placement_seconds: float = Field(3.0, ge=1, le=60, description="seconds each live placement verdict covers")
    streams: int = Field(4, ge=1, le=16, description="preview streams served at once")
    threads: int = Field(8, ge=2, le=32, description="server threads (each open preview holds one)")

    @field_validator("host")
    @classmethod
    def _local_only(cls, value: str) -> str:
        value = value.strip()
        if value in WILDCARDS:
            raise ValueError(f"host {value!r} listens on every interface: name the LAN interface's address")
        try:
            ipaddress.ip_address(value)
        except ValueError:
            if value != "localhost":
                raise ValueError(f"host {value!r}: an IP address of this unit (or localhost)") from None
        return value

    def state_path(self, data_dir: Path) -> Path:
        return self.state_dir if self.state_dir is not None else Path(data_dir) / "page"

    def requests_path(self, data_dir: Path) -> Path:
        return self.requests_dir if self.requests_dir is not None else Path(data_dir) / "requests"
