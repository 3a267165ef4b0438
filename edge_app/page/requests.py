"""Requests from the page to the unit's privileged helper: Wi-Fi and bridge settings, never applied here.

The page runs unprivileged and never calls ``nmcli`` or edits system files. A staff form only leaves one
request file in ``[page] requests_dir``: ``wifi.json`` or ``bridge.json`` (the newest request of a kind
replaces an unapplied older one), written atomically with mode 0600. The firmware's helper (root, started
by a path unit when the folder changes) reads it, checks it against the same schema, applies it
(NetworkManager through ``nmcli`` for Wi-Fi), removes it and writes ``<kind>.result.json``
(``{"id", "ok", "detail"}``), which the staff page shows.

Schema ``invigil.unit-request/1``: ``{"schema", "kind", "id", "requested_at", ...fields}`` with the fields of
:class:`WifiRequest` or :class:`BridgeRequest`.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from edge_app.atomic import write_bytes_atomic

SCHEMA = "invigil.unit-request/1"
KINDS = ("wifi", "bridge")
HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}"
                      r"[A-Za-z0-9])?)*$")
IPV6 = re.compile(r"^\[?[0-9A-Fa-f:.]{2,45}\]?$")


class WifiRequest(BaseModel):
    """Join a Wi-Fi network (WPA2/WPA3 personal)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["wifi"] = "wifi"
    ssid: str = Field(..., min_length=1, description="network name, 1-32 bytes")
    psk: str = Field(..., description="passphrase: 8-63 printable ASCII characters, or 64 hex digits")

    @field_validator("ssid")
    @classmethod
    def _ssid(cls, value: str) -> str:
        if len(value.encode("utf-8")) > 32 or any(ord(c) < 32 for c in value):
            raise ValueError("the network name is 1-32 bytes without control characters")
        return value

    @field_validator("psk")
    @classmethod
    def _psk(cls, value: str) -> str:
        if re.fullmatch(r"[0-9A-Fa-f]{64}", value) or (8 <= len(value) <= 63 and all(32 <= ord(c) < 127
                                                                                      for c in value)):
            return value
        raise ValueError("the passphrase is 8-63 printable ASCII characters (or 64 hex digits)")


class BridgeRequest(BaseModel):
    """Talk to another bridge: its broker's host and port."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["bridge"] = "bridge"
    host: str = Field(..., description="the bridge's host name or IP address")
    port: int = Field(8883, ge=1, le=65535, description="the broker's TLS port")

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        value = value.strip()
        if not (HOSTNAME.fullmatch(value) or (":" in value and IPV6.fullmatch(value))):
            raise ValueError("a host name or an IP address")
        return value


def write_request(folder: Path, request: WifiRequest | BridgeRequest) -> dict[str, Any]:
    """Leave ``request`` for the helper (replacing an unapplied one of its kind); returns what was written."""
    record = {"schema": SCHEMA, "id": uuid.uuid4().hex, "requested_at": round(time.time(), 3),
              **request.model_dump()}
    write_bytes_atomic(folder / f"{request.kind}.json", json.dumps(record).encode("utf-8") + b"\n", mode=0o600)
    return record


def pending(folder: Path) -> dict[str, dict[str, Any]]:
    """Per kind: the request waiting for the helper (secrets left out) and the helper's last result."""
    found: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        entry: dict[str, Any] = {}
        for key, name in (("waiting", f"{kind}.json"), ("result", f"{kind}.result.json")):
            try:
                data = json.loads((folder / name).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(data, dict):
                entry[key] = {k: v for k, v in data.items() if k != "psk"}
        found[kind] = entry
    return found
