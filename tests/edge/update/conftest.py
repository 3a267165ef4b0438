"""Bundles built with the real release tooling and a key made for the test (the release key is never in the
repository)."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge_app.update.bundle import build_bundle

MakeBundle = Callable[..., Path]


@pytest.fixture(scope="session")
def release_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def public_key(release_key: Ed25519PrivateKey) -> Ed25519PublicKey:
    return release_key.public_key()


def write_source(folder: Path, version: str, healthy: bool = True) -> Path:
    """A release tree: a tiny app package that knows its version, and a models folder."""
    app = folder / "app" / "edge_app"
    app.mkdir(parents=True)
    (app / "__init__.py").write_text(f'VERSION = "{version}"\n')
    (folder / "models").mkdir()
    (folder / "models" / "detector.int8.tflite").write_bytes(bytes(range(256)) * 64)
    if healthy:
        (folder / "models" / "manifest.json").write_text('{"models": {}}\n')
    return folder


@pytest.fixture
def make_bundle(tmp_path: Path, release_key: Ed25519PrivateKey) -> MakeBundle:
    """make_bundle("1.1.0", min_version="1.0.0", healthy=True, key=None) -> a signed bundle file."""
    made = [0]

    def make(version: str, min_version: str = "0.0.0", healthy: bool = True,
             key: Ed25519PrivateKey | None = None) -> Path:
        made[0] += 1
        source = write_source(tmp_path / f"src-{made[0]}", version, healthy)
        out = tmp_path / f"invigil-{version}-{made[0]}.tar"
        build_bundle(source, out, version, min_version, key or release_key)
        return out

    return make


def rewrite(bundle: Path, out: Path, replace: dict[str, bytes | None]) -> Path:
    """A copy of ``bundle`` with members replaced (bytes), dropped (None) or added (a name not in it)."""
    pending = dict(replace)
    with tarfile.open(bundle) as source, tarfile.open(out, "w") as target:
        for member in source:
            data = source.extractfile(member).read() if member.isfile() else None  # type: ignore[union-attr]
            if member.name in pending:
                data = pending.pop(member.name)
                if data is None:
                    continue
            member.size = len(data) if data is not None else 0
            target.addfile(member, io.BytesIO(data) if data is not None else None)
        for name, data in pending.items():
            assert data is not None
            info = tarfile.TarInfo(name)
            info.size = len(data)
            target.addfile(info, io.BytesIO(data))
    return out
