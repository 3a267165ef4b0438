"""Update bundles: a tar of ``app/`` and ``models/`` with a manifest signed by the offline release key.

``manifest.json`` names the version, when it was made, the oldest version it may upgrade, and the SHA-256 and
size of every file; ``manifest.sig`` is the Ed25519 signature over the manifest's exact bytes. A bundle is
opened (:func:`open_bundle`) only when the signature holds against the public key pinned on the unit; its files
are hashed as they are unpacked (:meth:`Bundle.extract`), so a file changed after signing is refused.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

MANIFEST, SIGNATURE = "manifest.json", "manifest.sig"
TOP = ("app", "models")  # the only folders a bundle may fill
VERSION = re.compile(r"^(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})$")
MAX_MANIFEST = 4 << 20  # bytes
CHUNK = 1 << 20


class UpdateRefused(RuntimeError):
    """An update (or rollback) that is not done: ``reason`` is a short code, the message says why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def parse_version(text: object) -> tuple[int, int, int]:
    found = VERSION.fullmatch(text) if isinstance(text, str) else None
    if found is None:
        raise ValueError(f"{text!r} is not a version MAJOR.MINOR.PATCH")
    return int(found.group(1)), int(found.group(2)), int(found.group(3))


def _safe_name(name: str) -> str | None:
    """``name`` as a relative path under one of TOP, or None when it could escape or is not ours."""
    path = PurePosixPath(name)
    if path.is_absolute() or any(part in ("", ".", "..") for part in path.parts) or len(path.parts) < 2:
        return None
    return str(path) if path.parts[0] in TOP else None


def file_digest(stream: IO[bytes]) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def make_manifest(source: Path, version: str, min_version: str, created: float | None = None) -> bytes:
    """The manifest of the files under ``source/app`` and ``source/models`` (sorted, canonical JSON)."""
    parse_version(version)
    parse_version(min_version)
    files: dict[str, dict[str, Any]] = {}
    for top in TOP:
        for path in sorted((source / top).rglob("*")):
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                raise ValueError(f"{path}: only regular files and folders go into a bundle")
            if path.is_file():
                with open(path, "rb") as stream:
                    sha256, size = file_digest(stream)
                files[path.relative_to(source).as_posix()] = {"sha256": sha256, "bytes": size,
                                                              "mode": 0o755 if os.access(path, os.X_OK) else 0o644}
    if not any(name.startswith("app/") for name in files):
        raise ValueError(f"{source}/app holds no file: a bundle carries the unit's app")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if created is None else created))
    manifest = {"format": 1, "version": version, "min_version": min_version, "created": stamp, "files": files}
    return json.dumps(manifest, indent=1, sort_keys=True).encode() + b"\n"


def release_difference(folder: Path) -> str | None:
    """How an installed release (``folder`` with app/, models/ and its manifest.json) differs from its manifest
    (a file missing, changed, or not listed), None when it matches: files rot on an SD card, and a release is
    switched back to long after it was unpacked. Python's ``__pycache__`` folders are left out (the services
    write none, but a hand-run command as root may)."""
    try:
        listed: dict[str, dict[str, Any]] = json.loads((folder / MANIFEST).read_bytes())["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"{folder.name}/{MANIFEST} is unreadable: {exc}"
    present = {path.relative_to(folder).as_posix() for top in TOP for path in (folder / top).rglob("*")
               if (path.is_file() or path.is_symlink()) and "__pycache__" not in path.parts}  # caches: derived
    for name in sorted(set(listed) | present):
        entry = listed.get(name)
        if entry is None:
            return f"{name} is not listed in {folder.name}/{MANIFEST}"
        if name not in present:
            return f"{name} is missing"
        try:
            with open(folder / name, "rb") as stream:
                sha256, size = file_digest(stream)
        except OSError as exc:
            return f"{name} cannot be read: {exc}"
        if (sha256, size) != (entry.get("sha256"), entry.get("bytes")):
            return f"{name} differs from its manifest entry"
    return None


def build_bundle(source: Path, out: Path, version: str, min_version: str, key: Ed25519PrivateKey) -> bytes:
    """Write the signed bundle of ``source`` to ``out``; the manifest's bytes returned."""
    manifest = make_manifest(source, version, min_version)
    signature = key.sign(manifest)
    files = json.loads(manifest)["files"]
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in ((MANIFEST, manifest), (SIGNATURE, signature)):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
        for name in files:
            tar.add(source / name, arcname=name, recursive=False)
    return manifest


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The release public key pinned on the unit (PEM)."""
    try:
        key = load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise UpdateRefused("no_key", f"the release public key {path} cannot be read: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise UpdateRefused("no_key", f"{path} is not an Ed25519 public key")
    return key


@dataclass
class Bundle:
    """A bundle whose manifest's signature holds; its files are checked while they are unpacked."""

    path: Path
    manifest_bytes: bytes
    signature: bytes
    manifest: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    def extract(self, target: Path) -> None:
        """Unpack into ``target`` (a new folder), hashing every file; UpdateRefused("tampered") on any difference
        from the manifest (``target`` is then incomplete: the caller removes it)."""
        expected: dict[str, dict[str, Any]] = self.manifest["files"]
        seen: set[str] = set()
        target.mkdir(parents=True)
        with tarfile.open(self.path, "r:*") as tar:
            for member in tar:
                if member.name in (MANIFEST, SIGNATURE) or member.isdir():
                    continue
                name = _safe_name(member.name)
                entry = expected.get(name) if name else None
                if name is None or entry is None or not member.isfile() or name in seen:
                    raise UpdateRefused("tampered", f"{member.name}: not a file the signed manifest lists")
                stream = tar.extractfile(member)
                assert stream is not None
                final = target / name
                final.parent.mkdir(parents=True, exist_ok=True)
                digest, size = hashlib.sha256(), 0
                with open(final, "xb") as out:
                    while chunk := stream.read(CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                if digest.hexdigest() != entry["sha256"] or size != entry["bytes"]:
                    raise UpdateRefused("tampered", f"{name}: its SHA-256 is not the one the signed manifest gives")
                os.chmod(final, 0o755 if entry.get("mode") == 0o755 else 0o644)
                seen.add(name)
        missing = sorted(set(expected) - seen)
        if missing:
            raise UpdateRefused("tampered", f"{len(missing)} file(s) of the manifest missing, first {missing[0]}")
        (target / MANIFEST).write_bytes(self.manifest_bytes)
        (target / SIGNATURE).write_bytes(self.signature)


def open_bundle(path: Path, key: Ed25519PublicKey) -> Bundle:
    """The bundle at ``path`` once its manifest's signature holds; UpdateRefused with ``unsigned``,
    ``bad_signature`` or ``malformed`` otherwise."""
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if member.name in (MANIFEST, SIGNATURE):
                    if not member.isfile() or member.size > MAX_MANIFEST or member.name in found:
                        raise UpdateRefused("malformed", f"{member.name}: not one small regular file")
                    stream = tar.extractfile(member)
                    assert stream is not None
                    found[member.name] = stream.read()
                elif not member.isdir() and (not member.isfile() or _safe_name(member.name) is None):
                    raise UpdateRefused("malformed", f"{member.name!r}: not a regular file under app/ or models/")
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise UpdateRefused("malformed", f"{path}: not a readable tar bundle: {exc}") from None
    if MANIFEST not in found:
        raise UpdateRefused("malformed", f"{path}: no {MANIFEST}")
    if SIGNATURE not in found:
        raise UpdateRefused("unsigned", f"{path}: no {SIGNATURE}: an unsigned bundle is never installed")
    try:
        key.verify(found[SIGNATURE], found[MANIFEST])
    except InvalidSignature:
        raise UpdateRefused("bad_signature", f"{path}: the manifest's signature does not hold against the "
                            "release key pinned on this unit") from None
    try:
        manifest = json.loads(found[MANIFEST])
        parse_version(manifest["version"])
        parse_version(manifest["min_version"])
        files = manifest["files"]
        if not isinstance(files, dict) or not all(_safe_name(name) == name for name in files):
            raise ValueError("files must map app/... and models/... paths to their digests")
    except (ValueError, KeyError, TypeError) as exc:
        raise UpdateRefused("malformed", f"{path}: a signed manifest that cannot be used: {exc}") from None
    return Bundle(path, found[MANIFEST], found[SIGNATURE], manifest)
