"""The seed file on the boot partition: what a person types before the first boot (``invigil-seed.toml``).

:func:`apply_seed` validates it in full (every problem named, nothing written otherwise), copies what the unit
needs into the state root (``/var/lib/invigil`` on the device) with atomic writes, and then scrubs the secrets
(the Wi-Fi PSK and the enrolment code) from the seed file, so the FAT boot partition, readable on any PC the
card is put in, no longer holds them. State written (secrets mode 0600):

  provision.json                      bridge URL, hostname, Wi-Fi SSID and country (no secrets)
  enrol-code                          the one-time enrolment code, for the enrolment at first boot
  hostname                            the hostname, one line
  network/invigil-wifi.nmconnection   a NetworkManager keyfile with the SSID and PSK

A seed whose secrets were already scrubbed can be applied again: the secrets the unit holds are kept.
"""

from __future__ import annotations

import json
import re
import time
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from edge_app.atomic import write_bytes_atomic
from edge_app.config import format_errors
from edge_app.protocol.commands import PAIR_CODE_ALPHABET

SEED_FILE = Path("/boot/firmware/invigil-seed.toml")
STATE_ROOT = Path("/var/lib/invigil")
ENROL_CODE_LENGTH = 12
SECRETS = ("psk", "enrol_code")
HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
WIFI_KEYFILE = Path("network") / "invigil-wifi.nmconnection"


class SeedError(ValueError):
    """A seed file that cannot be used or applied; the message names the file, each field and the reason."""


class BridgeSeed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(..., description="the bridge's address: https://host[:port] (http:// on a lab network only)")
    enrol_code: str | None = Field(None, description="the one-time enrolment code staff issued (12 characters; "
                                   "dashes, spaces and case do not matter); scrubbed once applied")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        found = re.fullmatch(r"(https?)://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?/?", value.strip())
        if found is None:
            raise ValueError(f"{value!r} is not http(s)://host[:port] (no path, user or query)")
        return value.strip().rstrip("/")

    @field_validator("enrol_code")
    @classmethod
    def _code(cls, value: str | None) -> str | None:
        if value is None:
            return None
        code = re.sub(r"[\s-]", "", value).upper()
        if len(code) != ENROL_CODE_LENGTH or any(ch not in PAIR_CODE_ALPHABET for ch in code):
            raise ValueError(f"an enrolment code is {ENROL_CODE_LENGTH} of {PAIR_CODE_ALPHABET} "
                             "(dashes and spaces allowed)")
        return code


class WifiSeed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ssid: str = Field(..., description="the network's name (1-32 bytes)")
    psk: str | None = Field(None, description="the WPA2/WPA3 passphrase: 8-63 printable ASCII characters or 64 "
                            "hex digits; scrubbed once applied (open networks are not supported)")
    country: str = Field(..., pattern=r"^[A-Z]{2}$", description="ISO 3166 country code for the radio's "
                         "regulatory domain (the Pi's Wi-Fi stays off without one)")

    @field_validator("ssid")
    @classmethod
    def _ssid(cls, value: str) -> str:
        if not 1 <= len(value.encode()) <= 32 or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            raise ValueError("an SSID is 1-32 bytes without control characters")
        return value

    @field_validator("psk")
    @classmethod
    def _psk(cls, value: str | None) -> str | None:
        if value is None or re.fullmatch(r"[0-9A-Fa-f]{64}", value) or re.fullmatch(r"[\x20-\x7e]{8,63}", value):
            return value
        raise ValueError("a passphrase is 8-63 printable ASCII characters (or 64 hex digits)")


class Seed(BaseModel):
    """What the seed file holds."""

    model_config = ConfigDict(extra="forbid")

    hostname: str = Field(..., pattern=HOSTNAME.pattern, description="the unit's hostname: 1-63 lower-case "
                          "letters, digits and dashes, not starting or ending with a dash")
    bridge: BridgeSeed = Field(..., description="where the unit enrols and connects")
    wifi: WifiSeed | None = Field(None, description="the Wi-Fi network (None: wired Ethernet only)")


def read_seed(path: Path) -> Seed:
    """Parse and validate ``path``; SeedError with every problem otherwise."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SeedError(f"{path}: cannot read the seed file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SeedError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise SeedError(f"{path}: not valid TOML: {exc}") from None
    try:
        return Seed.model_validate(data)
    except ValidationError as exc:
        raise SeedError(format_errors(str(path), exc)) from None


def _keyfile_string(value: str) -> str:
    """``value`` escaped for a GLib key file (NetworkManager's keyfile format)."""
    out = value.replace("\\", "\\\\").replace(";", "\\;").replace("\n", "\\n").replace("\t", "\\t")
    return "\\s" + out[1:] if out.startswith(" ") else out


def wifi_keyfile(wifi: WifiSeed, psk: str) -> str:
    """A NetworkManager connection for ``wifi`` (autoconnect, WPA-PSK, IPv4/IPv6 automatic)."""
    return ("[connection]\nid=invigil-wifi\ntype=wifi\nautoconnect=true\n\n"
            f"[wifi]\nmode=infrastructure\nssid={_keyfile_string(wifi.ssid)}\n\n"
            f"[wifi-security]\nkey-mgmt=wpa-psk\npsk={_keyfile_string(psk)}\n\n"
            "[ipv4]\nmethod=auto\n\n[ipv6]\nmethod=auto\n")


def _stored_ssid(state: Path) -> str | None:
    """The SSID of the keyfile the unit holds (None: none)."""
    try:
        text = (state / WIFI_KEYFILE).read_text(encoding="utf-8")
    except OSError:
        return None
    found = re.search(r"^ssid=(.*)$", text, re.MULTILINE)
    return found.group(1) if found else None


def scrub(path: Path, text: str) -> str:
    """``text`` without its secret lines (each replaced by a comment saying it was applied), written back to
    ``path`` atomically; SeedError if a secret would survive (a multi-line value, say)."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    lines = []
    for line in text.splitlines():
        key = line.split("=", 1)[0] if "=" in line and not line.lstrip().startswith("#") else ""
        key = key.rsplit(".", 1)[-1].strip().strip("\"'")  # psk, wifi.psk, "psk"
        lines.append(f"# {key}: applied to the unit and removed from this file on {stamp}"
                     if key in SECRETS else line)
    scrubbed = "\n".join(lines) + "\n"
    data = tomllib.loads(scrubbed)
    if (data.get("wifi") or {}).get("psk") is not None or (data.get("bridge") or {}).get("enrol_code") is not None:
        raise SeedError(f"{path}: a secret could not be removed: write psk and enrol_code as one-line strings")
    write_bytes_atomic(path, scrubbed.encode())
    return scrubbed


def apply_seed(path: Path = SEED_FILE, state: Path = STATE_ROOT) -> dict[str, Any]:
    """Validate ``path``, copy it into ``state``, scrub its secrets; the provisioning record written."""
    seed = read_seed(path)
    text = path.read_text(encoding="utf-8")
    if seed.wifi is not None and seed.wifi.psk is None and _stored_ssid(state) != _keyfile_string(seed.wifi.ssid):
        raise SeedError(f"{path}: wifi.psk: missing, and the unit holds no passphrase for {seed.wifi.ssid!r}")
    record = {"bridge_url": seed.bridge.url, "hostname": seed.hostname,
              "wifi_ssid": seed.wifi.ssid if seed.wifi else None,
              "wifi_country": seed.wifi.country if seed.wifi else None, "seeded_at": time.time()}
    if seed.bridge.enrol_code is not None:
        write_bytes_atomic(state / "enrol-code", (seed.bridge.enrol_code + "\n").encode(), mode=0o600)
    if seed.wifi is not None and seed.wifi.psk is not None:
        write_bytes_atomic(state / WIFI_KEYFILE, wifi_keyfile(seed.wifi, seed.wifi.psk).encode(), mode=0o600)
    elif seed.wifi is None:
        (state / WIFI_KEYFILE).unlink(missing_ok=True)
    write_bytes_atomic(state / "hostname", (seed.hostname + "\n").encode(), mode=0o644)
    write_bytes_atomic(state / "provision.json", (json.dumps(record, indent=2) + "\n").encode(), mode=0o644)
    if seed.bridge.enrol_code is not None or (seed.wifi is not None and seed.wifi.psk is not None):
        scrub(path, text)
    return record
