"""The bridge's one root config (TOML), validated in full before anything starts.

``load(path)`` reads the file and applies ``INVIGIL_BRIDGE__<FIELD>`` (``__`` between levels) environment
overrides, read as the field's type needs (edge_app/env_overrides.py, shared with the unit), e.g.
``INVIGIL_BRIDGE__DATABASE_URL=postgresql+psycopg://...``; relative paths are relative to the file's folder.
Errors name the file, the field and the reason.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cloud_bridge.retention import RetentionConfig
from cloud_bridge.risk import RiskWeights
from edge_app.env_overrides import OverrideError, apply_env
from edge_app.protocol.commands import MAX_PHOTO_BYTES
from edge_app.protocol.transport import BrokerConnection, ca_bundle
from edge_app.rules.config import override_problems

ENV_PREFIX = "INVIGIL_BRIDGE__"


class ConfigError(ValueError):
    """A config that cannot be used; the message lists every problem as ``field: reason``."""


class MqttConfig(BrokerConnection):
    """The broker connection of the consumers and the publisher."""

    workers: int = Field(2, ge=1, le=32, description="consumers sharing the device topics ($share/bridge/...)")
    client_prefix: str = Field("invigil-bridge", pattern=r"^[A-Za-z0-9_-]{1,40}$",
                               description="client ids are <prefix>-<n>; keep them stable: the broker keeps each "
                               "one's session and queues messages for it while the bridge restarts")
    session_expiry: int = Field(86_400, ge=0, le=30 * 86_400,
                                description="seconds the broker keeps a worker's session (and its queue) while "
                                "it is away")
    batch_max: int = Field(250, ge=1, le=1000, description="messages a consumer stores in one transaction at "
                           "most (one commit, then their acknowledgements); the broker may send it twice as many "
                           "before it acknowledges one; a bigger batch shares a transaction's fixed cost among more "
                           "events (docs/bridge.md, Batches)")
    batch_wait_ms: float = Field(5.0, ge=0, le=1000, description="milliseconds a consumer waits after a batch's "
                                 "first message for more before it stores the batch (0: only what has arrived); "
                                 "an event's proctor alert may wait this long")


class EngineConfig(BaseModel):
    """Which broker the bridge works through: Mosquitto (the embedded default) or a NATS cluster (docs/scale.md)."""

    model_config = ConfigDict(extra="forbid")

    engine: Literal["mosquitto", "nats"] = Field("mosquitto", description="mosquitto: MQTT consumers on $share and "
                                                 "the MQTT publisher, both through [mqtt]; nats: the JetStream "
                                                 "consumer on the stream INVIGIL_DEV and a JetStream publisher into "
                                                 "the MQTT gateway's stream, through nats_servers ([mqtt] unused; "
                                                 "units use the gateway's MQTT port with link.broker.protocol "
                                                 "3.1.1)")
    nats_servers: list[str] = Field(default_factory=list, description="the NATS cluster's client URLs "
                                    "(nats://host:4222 or tls://...), any of which will do; needed by engine nats")
    nats_workers: int = Field(2, ge=1, le=32, description="pull workers sharing the JetStream durable 'bridge' "
                              "in this process (more processes, on any host, share it too)")
    stream_replicas: int = Field(3, ge=1, le=5, description="replicas of INVIGIL_DEV when the bridge creates it "
                                 "(an existing stream is left as it is)")

    @field_validator("nats_servers")
    @classmethod
    def _urls(cls, servers: list[str]) -> list[str]:
        bad = [url for url in servers if not url.startswith(("nats://", "tls://"))]
        if bad:
            raise ValueError(f"not a nats:// or tls:// URL: {', '.join(bad)}")
        return servers

    @model_validator(mode="after")
    def _servers_for_nats(self) -> EngineConfig:
        if self.engine == "nats" and not self.nats_servers:
            raise ValueError("engine nats needs nats_servers")
        return self


class HttpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="address the HTTP API and proctor pages listen on")
    port: int = Field(8080, ge=0, le=65535, description="port (0: any free port, for tests)")
    threads: int = Field(16, ge=2, le=256, description="server threads (requests served at once)")
    max_upload_bytes: int = Field(2_000_000, ge=10_000, le=50_000_000, description="largest evidence upload; "
                                  "larger bodies are refused from their headers, before they are read")
    max_photo_bytes: int = Field(MAX_PHOTO_BYTES, ge=10_000, le=MAX_PHOTO_BYTES,
                                 description="largest enrolled photo (it travels to the unit in a signed command)")
    rate_per_second: float = Field(20.0, gt=0, le=10_000, description="requests a second one caller (a token; "
                                   "a unit's uploads; else an address) may make on average; over it: 429")
    rate_burst: int = Field(60, ge=1, le=100_000, description="requests one caller may make at once")
    max_waiting: int | None = Field(None, ge=1, le=255, description="requests that may wait for news at once "
                                    "(live pages' long polls, event streams); below threads, so the API always has "
                                    "threads left (default: half the threads)")
    poll_wait: float = Field(20.0, ge=1, le=60, description="seconds a live page's poll waits for news")
    secure_cookie: bool = Field(False, description="always mark the proctor page's cookie Secure (it is whenever "
                                "the request came over TLS, or through trusted_proxy with X-Forwarded-Proto: https)")
    trusted_proxy: str | None = Field(None, min_length=1, description="address of a TLS-terminating proxy whose "
                                      "X-Forwarded-Proto and X-Forwarded-For are believed")

    @model_validator(mode="after")
    def _threads_left(self) -> HttpConfig:
        if self.max_waiting is not None and self.max_waiting >= self.threads:
            raise ValueError(f"max_waiting ({self.max_waiting}) must be below threads ({self.threads})")
        return self

    @property
    def waiting_slots(self) -> int:
        return self.max_waiting if self.max_waiting is not None else self.threads // 2


class DeadLetterConfig(BaseModel):
    """How much of what it rejects the bridge keeps (cloud_bridge/dead_letters.py): every message is counted."""

    model_config = ConfigDict(extra="forbid")

    max_payload_bytes: int = Field(4096, ge=512, le=1_000_000, description="bytes of a rejected payload kept (its "
                                   "first ones, with the size and SHA-256 of the whole); every valid message is "
                                   "smaller, so a replay gets it whole")
    keep_per_second: float = Field(1.0, gt=0, le=10_000, description="rejected messages kept per second per source "
                                   "(a unit, by its topic) once its burst is spent; the rest are only counted")
    keep_burst: int = Field(100, ge=1, le=1_000_000, description="rejected messages one source may have kept at "
                            "once before sampling starts")


class FleetConfig(BaseModel):
    """Enrolment of new units, staff logins and the fleet's rules (cloud_bridge/fleet.py)."""

    model_config = ConfigDict(extra="forbid")

    min_software_version: str | None = Field(None, pattern=r"^[0-9]+(\.[0-9]+){0,3}$", description="the oldest "
                                             "unit software an exam may be paired with (staff may raise it at run "
                                             "time, never below this); a unit of unknown version is below any")
    code_ttl: float = Field(86_400.0, ge=60, le=30 * 86_400, description="seconds an enrolment code stays valid "
                            "unless its issuer says otherwise")
    staff_session_ttl: float = Field(43_200.0, ge=300, le=7 * 86_400, description="seconds a staff login lasts")
    staff_lockout_after: int = Field(10, ge=3, le=1000, description="failed logins in a row that lock a staff or "
                                     "reviewer account (a success or an unlock clears the count)")
    staff_lockout_seconds: float = Field(900.0, ge=10, le=7 * 86_400, description="seconds a locked account "
                                         "refuses every login, the right password too (staff may unlock it "
                                         "sooner: POST /api/v1/staff/users/<name>/unlock, or staff unlock)")
    unit_broker_host: str | None = Field(None, min_length=1, description="broker host told to enrolled units "
                                         "(default: mqtt.host)")
    unit_broker_port: int | None = Field(None, ge=1, le=65535, description="its port (default: mqtt.port)")
    unit_broker_tls: bool | None = Field(None, description="whether units connect with TLS (default: mqtt.tls)")
    unit_broker_ca_file: Path | None = Field(None, description="the CA certificate(s) (PEM, certificates only, at "
                                             "most 64 KiB) that sign the broker's certificate as units see it, sent "
                                             "to each unit at enrolment (broker.ca_pem): needed when that is a "
                                             "private CA; None: units trust their system's CAs; needs units on TLS")
    accounts_file: Path | None = Field(None, description="the broker's dynamic-security.json (from broker-config) "
                                       "whose unit accounts the bridge rewrites on enrolment and revocation")
    broker_admin: BrokerConnection | None = Field(None, description="an admin account (broker-config --admin) "
                                                  "that adds and removes unit accounts on the running broker and "
                                                  "disconnects a revoked unit at once; without it a restart applies "
                                                  "them")

    @field_validator("unit_broker_ca_file")
    @classmethod
    def _ca_bundle(cls, path: Path | None) -> Path | None:
        if path is not None:
            read_ca_bundle(path)
        return path


class BridgeConfig(BaseModel):
    """Everything the cloud bridge needs."""

    model_config = ConfigDict(extra="forbid")

    database_url: str = Field("sqlite:///bridge.db", min_length=1,
                              description="SQLAlchemy URL: sqlite:///file.db (default) or postgresql+psycopg://...")
    key_file: Path = Field(Path("bridge.key"), description="the bridge's Ed25519 key that signs device commands "
                           "(created on first start, mode 0600); devices hold its public half")
    mqtt: MqttConfig = Field(..., description="the broker")
    broker: EngineConfig = Field(default_factory=EngineConfig,  # type: ignore[arg-type]
                                 description="which broker: Mosquitto through [mqtt] (default) or a NATS cluster")
    http: HttpConfig = Field(default_factory=HttpConfig)  # type: ignore[arg-type]
    pairing_ttl: float = Field(900.0, gt=0, le=86_400, description="seconds a pairing code stays valid")
    offline_after: float = Field(30.0, ge=5, le=3600, description="seconds without any message from a paired "
                                 "device before device_offline is raised")
    offline_grace: float = Field(5.0, ge=0, le=600, description="seconds a paired device may stay offline (its last "
                                 "will) before device_offline is raised: a broker restart or a reconnect raises none")
    gap_after: float = Field(30.0, ge=1, le=86_400, description="seconds a hole in a device's sequence numbers may "
                             "last (events still on their way, out of order) before it is flagged as a gap")
    dead_letters: DeadLetterConfig = Field(default_factory=DeadLetterConfig,  # type: ignore[arg-type]
                                           description="rejected messages: payload cap and sampling under flood")
    fleet: FleetConfig = Field(default_factory=FleetConfig,  # type: ignore[arg-type]
                               description="enrolment, staff logins and the fleet's minimum software version")
    retention: RetentionConfig = Field(default_factory=RetentionConfig,
                                       description="evidence retention: the sweep's interval and the default "
                                       "policy (cloud_bridge/retention.py)")
    review: RiskWeights = Field(default_factory=RiskWeights, description="the weights of the sessions' risk score "
                                "the review pages rank by (cloud_bridge/risk.py, docs/review.md)")
    rules: dict[str, Any] = Field(default_factory=dict, description="rule overrides sent to every device at session "
                                  "start (the device's rules section: preset, per-kind thresholds), checked as the "
                                  "unit checks them")

    @property
    def units_use_tls(self) -> bool:
        """Whether enrolled units are told to connect with TLS (fleet.unit_broker_tls, else mqtt.tls)."""
        return self.mqtt.tls if self.fleet.unit_broker_tls is None else self.fleet.unit_broker_tls

    @model_validator(mode="after")
    def _unit_ca_needs_tls(self) -> BridgeConfig:
        if self.fleet.unit_broker_ca_file is not None and not self.units_use_tls:
            raise ValueError("fleet.unit_broker_ca_file set but units connect without TLS (fleet.unit_broker_tls, "
                             "else mqtt.tls, is false): set it true or remove the CA file")
        return self

    @field_validator("rules")
    @classmethod
    def _rules_a_unit_takes(cls, rules: dict[str, Any]) -> dict[str, Any]:
        problems = override_problems(rules)
        if problems:
            raise ValueError("a unit would refuse these rules: " + "; ".join(problems))
        return rules


def read_ca_bundle(path: Path) -> str:
    """The certificates of a CA bundle file, in PEM (edge_app.protocol.transport.ca_bundle); ValueError naming
    the file and why it is unusable."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not PEM text") from None
    try:
        return ca_bundle(text)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def unit_ca_pem(config: BridgeConfig) -> str | None:
    """The CA bundle told to enrolled units, read now (at start-up); ConfigError when it has become unusable."""
    path = config.fleet.unit_broker_ca_file
    if path is None:
        return None
    try:
        return read_ca_bundle(path)
    except ValueError as exc:
        raise ConfigError(f"fleet.unit_broker_ca_file: {exc}") from None


def _resolve(data: dict[str, Any], base: Path) -> None:
    # the default database and key live beside the file too, not wherever the bridge happens to start
    data.setdefault("key_file", str(BridgeConfig.model_fields["key_file"].default))
    data.setdefault("database_url", BridgeConfig.model_fields["database_url"].default)
    for holder, key in ((data, "key_file"), *((data.get("mqtt"), k) for k in
                        ("ca_file", "cert_file", "key_file", "password_file"))):
        if isinstance(holder, dict) and isinstance(holder.get(key), str) and not Path(holder[key]).is_absolute():
            holder[key] = str(base / holder[key])
    fleet = data.get("fleet")
    if isinstance(fleet, dict):
        holders = [(fleet, "accounts_file"), (fleet, "unit_broker_ca_file"), *((fleet.get("broker_admin"), k) for k in
                                                 ("ca_file", "cert_file", "key_file", "password_file"))]
        for holder, key in holders:
            if isinstance(holder, dict) and isinstance(holder.get(key), str) and not Path(holder[key]).is_absolute():
                holder[key] = str(base / holder[key])
    url = data.get("database_url")
    if isinstance(url, str) and url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        data["database_url"] = f"sqlite:///{base / url[len('sqlite:///'):]}"


def parse(data: dict[str, Any], source: str = "config", environ: dict[str, str] | None = None,
          base: Path | None = None) -> BridgeConfig:
    try:  # decoded by each field's type, as the unit's (edge_app/env_overrides.py)
        merged = apply_env(BridgeConfig, data, os.environ if environ is None else environ, ENV_PREFIX)
    except OverrideError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    if base is not None:
        _resolve(merged, base)
    try:
        return BridgeConfig.model_validate(merged)
    except ValidationError as exc:
        lines = [f"{source}: {exc.error_count()} problem(s)"]
        lines += [f"  {'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("\n".join(lines)) from None


def load(path: Path, environ: dict[str, str] | None = None) -> BridgeConfig:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config: {exc.strerror}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse(data, str(path), environ, path.resolve().parent)
