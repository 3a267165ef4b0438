"""The broker connection settings, the paho client built from them, and device status payloads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from edge_app.protocol.transport import BrokerConnection, decode_status, new_client, status_payload


@pytest.mark.parametrize(("state", "now_ms", "payload"), [
    ("online", 1_700_000_000_000, b'{"state":"online","t":1700000000000}'),
    ("online", 0, b'{"state":"online","t":0}'),
    ("offline", None, b'{"state":"offline"}'),  # the last will: written at connect time, so no time
])
def test_status_payload(state: str, now_ms: int | None, payload: bytes) -> None:
    assert status_payload(state, now_ms) == payload
    assert decode_status(payload) == state


@pytest.mark.parametrize(("payload", "state"), [
    (b'{"state":"online"}', "online"),
    (b'{"state":"offline","t":5,"extra":1}', "offline"),
    (b"", None),  # a cleared retained status
    (b"online", None),
    (b'"online"', None),
    (b'["online"]', None),
    (b'{"state":"away"}', None),
    (b'{"state":1}', None),
    (b'{"status":"online"}', None),
    (b"\xff\xfe", None),
    (b'{"state":"online","pad":"' + b"x" * 300 + b'"}', None),  # over 256 bytes
])
def test_decode_status(payload: bytes, state: str | None) -> None:
    assert decode_status(payload) == state


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name in ("ca.pem", "cert.pem", "key.pem", "password"):
        out[name] = tmp_path / name
        out[name].write_text("s3cret\r\n" if name == "password" else "-----BEGIN-----\n")
    return out


@pytest.mark.parametrize(("fields", "problem"), [
    ({"host": ""}, "at least 1 character"),
    ({"port": 0}, "greater than or equal to 1"),
    ({"port": 65536}, "less than or equal to 65535"),
    ({"keepalive": 4}, "greater than or equal to 5"),
    ({"ca_file": "ca.pem"}, "tls is false"),
    ({"tls": True, "cert_file": "cert.pem"}, "go together"),
    ({"tls": True, "key_file": "key.pem"}, "go together"),
    ({"password_file": "password"}, "needs username"),
    ({"tls": True, "ca_file": "missing.pem"}, "is not a file"),
    ({"username": ""}, "at least 1 character"),
    ({"user": "x"}, "Extra inputs are not permitted"),
])
def test_connection_settings_refuse(files: dict[str, Path], fields: dict[str, Any], problem: str) -> None:
    base = next(iter(files.values())).parent
    values = {"host": "127.0.0.1", **{k: str(base / v) if k.endswith("_file") else v for k, v in fields.items()}}
    with pytest.raises(ValidationError, match=problem):
        BrokerConnection.model_validate(values)


def test_new_client_takes_the_password_from_its_file(files: dict[str, Path]) -> None:
    connection = BrokerConnection.model_validate({"host": "127.0.0.1", "username": "unit-1",
                                                  "password_file": files["password"]})
    client = new_client(connection, "unit-1")
    assert client._username == b"unit-1" and client._password == b"s3cret"  # the line end is not the password
    assert new_client(BrokerConnection.model_validate({"host": "127.0.0.1"}), "x")._username is None


def test_new_client_reports_a_missing_password_file(files: dict[str, Path]) -> None:
    connection = BrokerConnection.model_validate({"host": "127.0.0.1", "username": "unit-1",
                                                  "password_file": files["password"]})
    files["password"].unlink()
    with pytest.raises(OSError):
        new_client(connection, "unit-1")
