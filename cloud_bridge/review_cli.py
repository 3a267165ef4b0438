"""The review commands of ``python -m cloud_bridge``: a session's export, and its offline verification."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from cloud_bridge.report_cli import add_commands as add_report_commands
from cloud_bridge.report_cli import run as run_report_command
from cloud_bridge.verify import ExportInvalid, verify

Command = Callable[..., argparse.ArgumentParser]


def add_commands(commands: argparse._SubParsersAction, command: Command) -> None:
    export = command("export", "a session's signed events as JSON lines that anyone verifies offline")
    export.add_argument("--session", required=True, metavar="ID")
    export.add_argument("--out", type=Path, required=True, metavar="FILE", help="where to write it")
    check = commands.add_parser("verify", help="verify an export offline: signatures, hash chain, seal")
    check.add_argument("file", type=Path, metavar="FILE")
    check.add_argument("--device-key", type=Path, metavar="PEM", help="the unit's published public key (pins it)")
    check.add_argument("--bridge-key", type=Path, metavar="PEM", help="the bridge's published public key (pins it)")
    add_report_commands(commands, command)


def _key(path: Path | None) -> Ed25519PublicKey | None:
    if path is None:
        return None
    key = load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path}: not an Ed25519 public key")
    return key


def run(args: argparse.Namespace) -> int | None:
    """Run a review command; None when ``args`` names another."""
    if (done := run_report_command(args)) is not None:  # report, regulator-feed, verify-feed, purge
        return done
    if args.command == "verify":
        try:
            result = verify(args.file.read_bytes(), _key(args.device_key), _key(args.bridge_key))
        except ExportInvalid as exc:
            print(f"{args.file}: INVALID at {exc}", file=sys.stderr)
            return 1
        print(f"{args.file}: {result.summary()}")
        return 0
    if args.command == "export":
        from cloud_bridge.config import load
        from cloud_bridge.export import export_session
        from cloud_bridge.store import Store
        from edge_app.atomic import write_bytes_atomic
        from edge_app.protocol.keys import load_or_create_key

        config = load(args.config)
        store = Store(config.database_url)
        try:
            data = export_session(store, args.session, load_or_create_key(config.key_file))
        finally:
            store.close()
        write_bytes_atomic(args.out, data)
        print(f"wrote {args.out}: verify it with python -m cloud_bridge verify {args.out}")
        return 0
    return None
