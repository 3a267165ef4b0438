"""Report, regulator-feed and retention commands of ``python -m cloud_bridge`` (hooked in by review_cli.py):
``report``, ``regulator-feed``, ``verify-feed`` (offline) and ``purge``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

Command = Callable[..., argparse.ArgumentParser]


def add_commands(commands: argparse._SubParsersAction, command: Command) -> None:
    report = command("report", "a session's report as HTML and PDF (timeline, score, decisions, snapshots)")
    report.add_argument("--session", required=True, metavar="ID")
    report.add_argument("--out", type=Path, required=True, metavar="DIR", help="writes session-<ID>.html and .pdf")
    report.add_argument("--format", action="append", choices=("html", "pdf"), help="only this one (repeatable)")
    regulator = command("regulator-feed", "an exam's per-candidate risk and decisions, signed by the bridge")
    regulator.add_argument("--exam", required=True, metavar="EXAM")
    regulator.add_argument("--out", type=Path, required=True, metavar="FILE", help="the feed; its signature goes "
                           "to FILE.sig")
    check = commands.add_parser("verify-feed", help="verify a regulator feed's signature offline")
    check.add_argument("file", type=Path, metavar="FILE")
    check.add_argument("--sig", type=Path, metavar="FILE", help="its signature file (default: FILE.sig)")
    check.add_argument("--bridge-key", type=Path, metavar="PEM", help="the bridge's published public key (pins it)")
    purge = command("purge", "delete the evidence retention says is due now (the sweep does it on its own)")
    purge.add_argument("--dry-run", action="store_true", help="only list what would go, and why")
    purge.add_argument("--by", default="cli", metavar="NAME", help="who purges, for the purges log (default: cli)")


def _store(args: argparse.Namespace) -> tuple[Any, Any]:
    from cloud_bridge.config import load
    from cloud_bridge.store import Store

    config = load(args.config)
    return config, Store(config.database_url)


def _audit(store: Any, target: str, detail: dict[str, Any]) -> None:
    """Reports and feeds read evidence and decisions: logged as the HTTP routes log them, by ``cli``."""
    from cloud_bridge import audit

    with store.session() as session, session.begin():
        audit.record(session, "cli", "export", target, detail)


def run(args: argparse.Namespace) -> int | None:
    """Run one of these commands; None when ``args`` names another."""
    if args.command == "verify-feed":
        from cloud_bridge.review_cli import _key
        from cloud_bridge.verify import ExportInvalid, verify_feed

        sig = args.sig or args.file.with_name(args.file.name + ".sig")
        try:
            checked = verify_feed(args.file.read_bytes(), sig.read_bytes(), _key(args.bridge_key))
        except ExportInvalid as exc:
            print(f"{args.file}: INVALID: {exc}", file=sys.stderr)
            return 1
        print(f"{args.file}: {checked.summary()}")
        return 0
    if args.command not in ("report", "regulator-feed", "purge"):
        return None
    from edge_app.atomic import write_bytes_atomic

    config, store = _store(args)
    try:
        if args.command == "report":
            from cloud_bridge.report import ReportError, write_reports

            try:
                written = write_reports(store, args.session, args.out, config.review,
                                        tuple(args.format or ("html", "pdf")))
            except ReportError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            _audit(store, args.session, {"report": [p.suffix[1:] for p in written]})
            for path in written:
                print(f"wrote {path}")
            return 0
        if args.command == "regulator-feed":
            from cloud_bridge.regulator import feed
            from edge_app.protocol.keys import load_or_create_key

            body, signature = feed(store, args.exam, load_or_create_key(config.key_file), config.review)
            write_bytes_atomic(args.out, body)
            _audit(store, args.exam, {"regulator_feed": True, "bytes": len(body)})
            write_bytes_atomic(args.out.with_name(args.out.name + ".sig"), signature)
            print(f"wrote {args.out} and {args.out.name}.sig: verify with python -m cloud_bridge verify-feed "
                  f"{args.out}")
            return 0
        from cloud_bridge.dispatch import DeviceCommands
        from cloud_bridge.outbox import BridgeOutbox
        from cloud_bridge.retention import Retention
        from edge_app.protocol.keys import load_or_create_key

        # the units' evidence_purge goes to the outbox: the running bridge's relay publishes it
        commands = DeviceCommands(BridgeOutbox(store), load_or_create_key(config.key_file))
        retention = Retention(store, commands, config.retention)
        if args.dry_run:
            for doomed in retention.plan():
                print(f"{doomed.digest} {doomed.reason:<9} {doomed.bytes:>8} B session {doomed.session_id or '-'}: "
                      f"{doomed.why}")
            return 0
        print(retention.purge(by=args.by).summary())
        return 0
    finally:
        store.close()
