"""Ed25519 signing keys (a device's, the bridge's): created once, kept in a 0600 file, never sent."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge_app.atomic import write_bytes_atomic


class DeviceKeyError(RuntimeError):
    """A key file that cannot be read or is not an Ed25519 private key; names the file."""


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The key in ``path``; a new one written there atomically (mode 0600) when the file does not exist."""
    if path.exists():
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise DeviceKeyError(f"device key {path}: cannot be read as a PEM private key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise DeviceKeyError(f"device key {path}: holds a {type(key).__name__}, expected an Ed25519 key")
        return key
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    write_bytes_atomic(path, pem, mode=0o600)
    return key


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The public half as PEM text, for the bridge's device registry."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
