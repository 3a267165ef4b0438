"""The device key: created once with mode 0600, loaded again, clear errors."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from edge_app.protocol.keys import DeviceKeyError, load_or_create_key, public_pem


def test_created_once_private_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "device.pem"
    key = load_or_create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_or_create_key(path)
    assert public_pem(again) == public_pem(key) and "BEGIN PUBLIC KEY" in public_pem(key)
    assert [p.name for p in path.parent.iterdir()] == ["device.pem"]  # no temp file left


def test_garbage_and_the_wrong_kind_of_key_are_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    with pytest.raises(DeviceKeyError, match=r"garbage\.pem: cannot be read"):
        load_or_create_key(garbage)
    ec = tmp_path / "ec.pem"
    ec.write_bytes(generate_private_key(SECP256R1()).private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    with pytest.raises(DeviceKeyError, match="expected an Ed25519 key"):
        load_or_create_key(ec)
