"""Build and sign an update bundle on the offline release machine: ``python -m tools.release``.

  python -m tools.release keygen KEY PUB
      a new Ed25519 release key (KEY, mode 0600: keep it offline, never in the repository) and its public half
      (PUB: pinned in the device image as /etc/invigil/release.pub)
  python -m tools.release build SOURCE --version 1.4.0 --min-version 1.2.0 --key KEY --out BUNDLE
      SOURCE holds app/ (the edge_app package tree) and models/ (the built models); the bundle is a tar of
      them with manifest.json (version, created, SHA-256 of every file, oldest version it upgrades) and
      manifest.sig (the key's signature over the manifest's bytes)
  python -m tools.release stage SOURCE [--models DIR]
      fill SOURCE with this checkout's edge_app/ and the built int8 models (build/models by default; the
      unit runs int8 only, so the float reference models stay behind)

The unit installs a bundle with ``python -m edge_app update apply BUNDLE`` (firmware/README.md).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_app.atomic import write_bytes_atomic
from edge_app.protocol.keys import DeviceKeyError, load_or_create_key, public_pem
from edge_app.update.bundle import build_bundle

ROOT = Path(__file__).resolve().parents[1]


def keygen(key: Path, pub: Path) -> None:
    if key.exists():
        raise SystemExit(f"error: {key} exists: a release key is made once (the units pin its public half)")
    private = load_or_create_key(key)  # written atomically, mode 0600
    write_bytes_atomic(pub, public_pem(private).encode(), mode=0o644)


def load_key(path: Path) -> Ed25519PrivateKey:
    if not path.is_file():
        raise SystemExit(f"error: release key {path} not found (make one with: python -m tools.release keygen)")
    try:
        return load_or_create_key(path)
    except DeviceKeyError as exc:
        raise SystemExit(f"error: {exc}") from None


def stage(source: Path, models: Path) -> None:
    """``source/app/edge_app`` from this checkout (no caches) and ``source/models`` from the built models."""
    if (source / "app").exists() or (source / "models").exists():
        raise SystemExit(f"error: {source} holds app/ or models/ already: stage into an empty folder")
    if not (models / "manifest.json").is_file():
        raise SystemExit(f"error: {models}/manifest.json is missing: run `make models` first")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "edge_app", source / "app" / "edge_app", ignore=ignore)
    shutil.copytree(models, source / "models", ignore=shutil.ignore_patterns("*.build.json", "*.float.tflite"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.release", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    keys = commands.add_parser("keygen", help="make the offline release key and its public half")
    keys.add_argument("key", type=Path)
    keys.add_argument("pub", type=Path)
    build = commands.add_parser("build", help="build and sign a bundle from SOURCE/app and SOURCE/models")
    build.add_argument("source", type=Path)
    build.add_argument("--version", required=True, help="MAJOR.MINOR.PATCH of this release")
    build.add_argument("--min-version", required=True, help="the oldest version this bundle may upgrade")
    build.add_argument("--key", type=Path, required=True, help="the offline release key (PEM, Ed25519)")
    build.add_argument("--out", type=Path, required=True, help="the bundle to write (.tar)")
    staging = commands.add_parser("stage", help="fill SOURCE with this checkout's app and the built models")
    staging.add_argument("source", type=Path)
    staging.add_argument("--models", type=Path, default=ROOT / "build" / "models")
    args = parser.parse_args(argv)
    if args.command == "keygen":
        keygen(args.key, args.pub)
        print(f"release key {args.key} (keep offline); public key {args.pub} (pin it in the image)")
    elif args.command == "stage":
        stage(args.source, args.models)
        print(f"staged {args.source}/app and {args.source}/models")
    else:
        try:
            manifest = build_bundle(args.source, args.out, args.version, args.min_version, load_key(args.key))
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"{args.out}: version {args.version}, manifest {len(manifest)} bytes, signed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
