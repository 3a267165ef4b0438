"""How either side reaches the broker: address, TLS and credentials, and a paho client built from them.

Both the device link (edge_app.link.mqtt) and the bridge's consumers use :class:`BrokerConnection`, so
TLS and credential handling is one piece of code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import load_pem_x509_certificates
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

STATES = ("online", "offline")
MAX_CA_BYTES = 64 * 1024  # a CA bundle told to a unit at enrolment: a few certificates, never a whole store
PEM_LABEL = re.compile(r"-----BEGIN ([A-Z0-9 ]*)-----")


class BrokerConnection(BaseModel):
    """Where the broker is and how this client authenticates to it."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(..., min_length=1, description="broker host name or IP address")
    port: int = Field(1883, ge=1, le=65535, description="broker port (1883 plain; usually 8883 with TLS)")
    tls: bool = Field(False, description="connect with TLS (the broker's certificate is verified)")
    ca_file: Path | None = Field(None, description="CA certificate(s) that sign the broker's certificate (PEM); "
                                 "None: the system's trusted CAs; needs tls")
    cert_file: Path | None = Field(None, description="client certificate (PEM); needs tls and key_file")
    key_file: Path | None = Field(None, description="private key of cert_file (PEM); needs tls and cert_file")
    username: str | None = Field(None, min_length=1, description="MQTT user name (per-device credentials)")
    password_file: Path | None = Field(None, description="file holding the MQTT password (one line; never the "
                                       "password itself in the config); needs username")
    keepalive: int = Field(30, ge=5, le=65535, description="seconds between pings when idle; the broker "
                           "publishes the last will after 1.5x this without traffic")

    @field_validator("ca_file", "cert_file", "key_file", "password_file")
    @classmethod
    def _is_file(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_file():
            raise ValueError(f"{path} is not a file")
        return path

    @model_validator(mode="after")
    def _consistent(self) -> BrokerConnection:
        files = [name for name in ("ca_file", "cert_file", "key_file") if getattr(self, name) is not None]
        if files and not self.tls:
            raise ValueError(f"{', '.join(files)} set but tls is false: set tls = true or remove them")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (the client certificate and its private key)")
        if self.password_file is not None and self.username is None:
            raise ValueError("password_file needs username")
        return self


def ca_bundle(text: object) -> str:
    """The certificates of a CA bundle (PEM) in canonical PEM, for a unit to trust its broker by; ValueError
    saying why when ``text`` is not a string of at most 64 KiB of one or more CERTIFICATE blocks and nothing else
    (never a private key)."""
    if not isinstance(text, str):
        raise ValueError(f"a CA bundle is PEM text, not {type(text).__name__}")
    data = text.encode("utf-8", "replace")
    if len(data) > MAX_CA_BYTES:
        raise ValueError(f"the CA bundle is {len(data)} bytes, more than {MAX_CA_BYTES}")
    labels = PEM_LABEL.findall(text)
    if any("PRIVATE KEY" in label for label in labels):
        raise ValueError("the CA bundle holds a private key: give only the CA's certificate(s)")
    if not labels:
        raise ValueError("the CA bundle holds no PEM block (-----BEGIN CERTIFICATE-----)")
    others = sorted({label for label in labels if label != "CERTIFICATE"})
    if others:
        raise ValueError(f"the CA bundle holds {', '.join(others)} besides certificates: give certificates only")
    try:
        certificates = load_pem_x509_certificates(data)
    except ValueError:
        raise ValueError("the CA bundle's CERTIFICATE blocks are not valid X.509 certificates") from None
    if len(certificates) != len(labels):
        raise ValueError(f"the CA bundle has {len(labels)} CERTIFICATE blocks but only {len(certificates)} "
                         "read as certificates")
    return "".join(cert.public_bytes(Encoding.PEM).decode("ascii") for cert in certificates)


def new_client(connection: BrokerConnection, client_id: str,
               client_class: type[mqtt.Client] = mqtt.Client) -> mqtt.Client:
    """A paho MQTT 5 client (of ``client_class``, paho's or a subclass) with the connection's credentials and TLS
    set (not yet connected).

    OSError or ValueError when the password file cannot be read or the TLS files are unusable."""
    client = client_class(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5)
    if connection.username is not None:
        password = None
        if connection.password_file is not None:
            password = connection.password_file.read_text(encoding="utf-8").rstrip("\r\n")
        client.username_pw_set(connection.username, password)
    if connection.tls:
        client.tls_set(ca_certs=str(connection.ca_file) if connection.ca_file else None,
                       certfile=str(connection.cert_file) if connection.cert_file else None,
                       keyfile=str(connection.key_file) if connection.key_file else None)
    return client


def status_payload(state: str, now_ms: int | None = None) -> bytes:
    """A device's retained status: ``{"state":"online","t":<ms>}``; ``t`` left out when None (the last will)."""
    fields: dict[str, Any] = {"state": state}
    if now_ms is not None:
        fields["t"] = now_ms
    return json.dumps(fields, separators=(",", ":")).encode("ascii")


def decode_status(payload: bytes) -> str | None:
    """The state in a status payload, or None when it is not one (an empty payload clears a retained status)."""
    try:
        fields = json.loads(payload) if len(payload) <= 256 else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    state = fields.get("state") if isinstance(fields, dict) else None
    return state if state in STATES else None
