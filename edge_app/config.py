"""The camera unit's one root config (TOML), validated in full before anything starts.

``load(path)`` reads the file, applies ``INVIGIL_*`` environment overrides and resolves relative paths
against the file's folder. Overrides name a field with double underscores between levels and are read as
the field's type needs (edge_app/env_overrides.py): ``INVIGIL_DEVICE_ID=1234``, ``INVIGIL_RULES__PRESET=strict``,
``INVIGIL_ANALYSIS__DETECTOR_HZ=3``, ``INVIGIL_AUDIO=null``. Errors name the file, the field and the reason.
"""

from __future__ import annotations

import logging
import os
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge_app import env_overrides
from edge_app.analysis_config import AnalysisConfig
from edge_app.capture.config import AudioSourceConfig, FrameSourceConfig
from edge_app.evidence.config import EvidenceConfig
from edge_app.indicators.config import IndicatorsConfig
from edge_app.link.config import LinkConfig
from edge_app.page.config import PageConfig
from edge_app.protocol import DEVICE_ID
from edge_app.rules.config import RulesConfig
from edge_app.vision.runtime import RUNTIMES

ENV_PREFIX = "INVIGIL_"
ROOT = Path(__file__).resolve().parents[1]
BROKER_FILES = ("ca_file", "cert_file", "key_file", "password_file")  # link.broker: relative to the config file
DATA_FILES = ("key_file", "outbox", "uploads")  # link: relative to data_dir


class ConfigError(ValueError):
    """A config that cannot be used; the message lists every problem as ``field: reason``."""


class ModelsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dir: Path = Field(ROOT / "build" / "models", description="folder with the built models and manifest.json")
    quant: Literal["int8", "float"] = Field("int8", description="int8 on the device; float is the reference")
    threads: int = Field(2, ge=1, le=16, description="interpreter threads per model")
    runtime: Literal[tuple(RUNTIMES)] | None = Field(  # type: ignore[valid-type]
        None, description="TFLite runtime (None: the first installed of " + ", ".join(RUNTIMES) + ")"
    )


class IdentityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enrolled: Path | None = Field(None, description="photo of the enrolled candidate (the bridge sends a template "
                                  "later); None: no identity checks")


class EdgeConfig(BaseModel):
    """Everything the camera unit needs to run one exam session."""

    model_config = ConfigDict(extra="forbid")

    device_id: str = Field(..., pattern=DEVICE_ID.pattern,
                           description="this unit's id: 3-14 lower-case letters, digits and dashes (the protocol's)")
    data_dir: Path = Field(ROOT / "build" / "edge-data", description="where the unit keeps evidence and state")
    camera: FrameSourceConfig = Field(..., description="the frame source, chosen by its type")
    audio: AudioSourceConfig | None = Field(None, description="the audio source (None: no audio alerts)")
    models: ModelsConfig = Field(default_factory=ModelsConfig)  # type: ignore[arg-type]
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)  # type: ignore[arg-type]
    rules: RulesConfig = Field(default_factory=lambda: RulesConfig.model_validate({}))
    evidence: EvidenceConfig = Field(default_factory=EvidenceConfig)  # type: ignore[arg-type]
    identity: IdentityConfig = Field(default_factory=IdentityConfig)  # type: ignore[arg-type]
    link: LinkConfig | None = Field(None, description="the connection to the cloud bridge (None: a standalone "
                                    "unit that only prints and keeps its alerts)")
    page: PageConfig = Field(default_factory=PageConfig)  # type: ignore[arg-type]
    indicators: IndicatorsConfig = Field(default_factory=IndicatorsConfig,  # type: ignore[arg-type]
                                         description="status LED, button and buzzer pins (hw/pinout.csv)")
    stall_after: float = Field(5.0, gt=0, le=600, description="seconds without a new frame before the camera "
                               "is reported stalled")

    def evidence_dir(self) -> Path:
        return self.evidence.directory if self.evidence.directory.is_absolute() \
            else self.data_dir / self.evidence.directory


def apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """``data`` with every ``INVIGIL_A__B=value`` set at ``a.b``; other ``INVIGIL_*`` variables (INVIGIL_CACHE
    for the build tools, ...) are not config overrides."""
    try:
        return env_overrides.apply_env(EdgeConfig, data, environ, ENV_PREFIX, skip_unknown=True)
    except env_overrides.OverrideError as exc:
        raise ConfigError(str(exc)) from None


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    """Make the relative file paths of the config relative to its own folder."""
    for section, key in (("camera", "path"), ("camera", "screen"), ("audio", "path"), ("models", "dir"),
                         ("identity", "enrolled"), (None, "data_dir"), ("page", "state_dir"),
                         ("page", "requests_dir")):
        holder = data if section is None else data.get(section)
        if isinstance(holder, dict) and isinstance(holder.get(key), str):
            path = Path(holder[key]).expanduser()
            holder[key] = str(path if path.is_absolute() else base / path)
    link = data.get("link")
    broker = link.get("broker") if isinstance(link, dict) else None
    for holder, key in ((link, "bridge_key"), *((broker, name) for name in BROKER_FILES)):
        if isinstance(holder, dict) and isinstance(holder.get(key), str):
            path = Path(holder[key]).expanduser()
            holder[key] = str(path if path.is_absolute() else base / path)
    for key in DATA_FILES:  # relative: under data_dir (LinkConfig.under), not the config's folder
        if isinstance(link, dict) and isinstance(link.get(key), str) and link[key].startswith("~"):
            link[key] = str(Path(link[key]).expanduser())
    camera = data.get("camera")
    if isinstance(camera, dict) and camera.get("type") == "opencv" and isinstance(camera.get("uri"), str):
        uri = camera["uri"]
        index = uri.isascii() and uri.isdigit()  # a camera index ("²".isdigit() is true too)
        if "://" not in uri and not index and not uri.startswith("/dev/") and not Path(uri).is_absolute():
            camera["uri"] = str(base / uri)


def format_errors(source: str, error: ValidationError) -> str:
    lines = [f"{source}: {error.error_count()} problem(s)"]
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(root)"
        lines.append(f"  {where}: {item['msg']}")
    return "\n".join(lines)


def parse(data: dict[str, Any], source: str = "config", environ: dict[str, str] | None = None,
          base: Path | None = None) -> EdgeConfig:
    try:
        merged = apply_env(data, os.environ if environ is None else environ)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    if base is not None:
        _resolve_paths(merged, base)
    try:
        return EdgeConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(format_errors(source, exc)) from None


def load(path: Path, environ: dict[str, str] | None = None) -> EdgeConfig:
    """Read, override from the environment, validate; ConfigError with every problem otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse(data, str(path), environ, path.resolve().parent)


def load_for_service(path: Path) -> EdgeConfig | None:
    """Start a long-running command (``run``, ``page``): logging to stderr, then the config; None when it is
    unusable, after printing every problem (the command exits 2)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return load(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None
