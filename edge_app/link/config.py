"""The ``[link]`` section: how the unit reaches the cloud (broker, keys, evidence uploads, heartbeat)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edge_app.protocol.transport import BrokerConnection


class MqttLinkConfig(BrokerConnection):
    """The broker connection (edge_app.protocol.transport) and how the link paces its publishing."""

    protocol: Literal["5", "3.1.1"] = Field("5", description="MQTT version: 5, or 3.1.1 for a broker that speaks "
                                            "only that (NATS's MQTT gateway); 3.1.1 keeps a persistent session "
                                            "(clean session off) but has no session_expiry (the broker's own limit "
                                            "applies) and no will_delay (the offline will goes out at once)")
    backoff_min: float = Field(0.5, gt=0, le=60, description="first reconnect delay in seconds")
    backoff_max: float = Field(30.0, gt=0, le=3600, description="longest reconnect delay in seconds (doubling "
                               "from backoff_min)")
    refused_backoff_max: float = Field(300.0, gt=0, le=3600, description="longest reconnect delay in seconds "
                                       "while the broker refuses this unit's credentials (revoked, or a wrong "
                                       "password): doubling from backoff_max, never below it")
    session_expiry: int = Field(86_400, ge=0, le=30 * 86_400, description="seconds the broker keeps this unit's "
                                "session while it is away, queueing the bridge's commands for it")
    will_delay: int = Field(10, ge=0, le=3600, description="seconds the broker waits before publishing the "
                            "offline last will, so a reconnect within it raises no alarm")
    inflight_max: int = Field(20, ge=1, le=1000, description="QoS 1 events published but not yet acknowledged, "
                              "at most")
    receipt_timeout: float = Field(10.0, ge=0.2, le=3600, description="seconds without a new receipt from the "
                                   "bridge while events wait before every unreceipted event is sent again "
                                   "(doubling while the bridge stays silent)")

    @model_validator(mode="after")
    def _backoff(self) -> MqttLinkConfig:
        if self.backoff_min > self.backoff_max:
            raise ValueError(f"backoff_min {self.backoff_min} is above backoff_max {self.backoff_max}")
        return self


class LinkConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    broker: MqttLinkConfig = Field(..., description="the MQTT broker and this unit's credentials")
    bridge_key: Path = Field(..., description="the bridge's Ed25519 public key (PEM): commands not signed by it "
                             "are refused")
    key_file: Path = Field(Path("device.key"), description="this unit's Ed25519 signing key (created at first "
                           "start, mode 0600; relative: under data_dir)")
    outbox: Path = Field(Path("outbox.db"), description="the event outbox (SQLite; relative: under data_dir)")
    uploads: Path = Field(Path("uploads.db"), description="evidence snapshots waiting for upload (SQLite; "
                          "relative: under data_dir)")
    evidence_url: str | None = Field(None, pattern=r"^https?://", description="the bridge's base URL for evidence "
                                     "uploads (None: snapshots stay on the unit)")
    stats_every: float = Field(10.0, ge=1, le=3600, description="seconds between heartbeats (stats)")
    pair_every: float = Field(0.5, ge=0.1, le=10, description="seconds between looks for a pairing QR code while "
                              "unpaired")

    @field_validator("bridge_key")
    @classmethod
    def _is_file(cls, path: Path) -> Path:
        if not path.is_file():
            raise ValueError(f"{path} is not a file")
        return path

    def under(self, data_dir: Path, path: Path) -> Path:
        return path if path.is_absolute() else data_dir / path
