"""``python -m edge_app update {apply BUNDLE, check, rollback, status}``.

Defaults come from the environment (set by the systemd units): ``INVIGIL_STATE_ROOT`` (/var/lib/invigil),
``INVIGIL_UPDATE_KEY`` (the release public key pinned in the image, /etc/invigil/release.pub) and
``INVIGIL_UPDATE_HEALTH`` (the health check command, run after each switch). ``check`` applies the newest bundle
left in ``<root>/updates/incoming/`` (by the link or by staff) and files it under ``done/`` or ``refused/``.
Exit status: 0 done (or nothing to do, or an exam is running: ``check`` tries again later), 1 refused, 2 unusable
arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from edge_app.atomic import write_bytes_atomic
from edge_app.update.bundle import UpdateRefused, load_public_key
from edge_app.update.releases import HealthCheck, Releases, command_health

STATE_ROOT = "/var/lib/invigil"
RELEASE_KEY = "/etc/invigil/release.pub"
HEALTH = "/usr/lib/invigil/invigil-health"


def add_parser(commands: argparse._SubParsersAction) -> None:
    """The ``update`` command and its subcommands."""
    update = commands.add_parser("update", help="signed updates: apply a bundle, check for one, roll back, status")
    update.add_argument("--root", type=Path, default=Path(os.environ.get("INVIGIL_STATE_ROOT", STATE_ROOT)),
                        help="state root holding releases/ and current (default: $INVIGIL_STATE_ROOT or "
                        f"{STATE_ROOT})")
    update.add_argument("--key", type=Path, default=Path(os.environ.get("INVIGIL_UPDATE_KEY", RELEASE_KEY)),
                        help=f"the pinned release public key, PEM (default: $INVIGIL_UPDATE_KEY or {RELEASE_KEY})")
    update.add_argument("--health", default=os.environ.get("INVIGIL_UPDATE_HEALTH", HEALTH),
                        help="command run after a switch; exit 0 = healthy (default: $INVIGIL_UPDATE_HEALTH or "
                        f"{HEALTH})")
    update.add_argument("--health-timeout", type=float, default=180.0, help="seconds the health check may take")
    actions = update.add_subparsers(dest="action", required=True)
    apply = actions.add_parser("apply", help="verify and install a bundle, switch to it, roll back if unhealthy")
    apply.add_argument("bundle", type=Path, metavar="BUNDLE")
    actions.add_parser("check", help="apply the newest bundle waiting in <root>/updates/incoming/")
    actions.add_parser("rollback", help="return to the previous release")
    actions.add_parser("status", help="print the current and previous release and the last result as JSON")


def _health(args: argparse.Namespace) -> HealthCheck:
    return command_health(shlex.split(args.health), args.health_timeout)


def _check(args: argparse.Namespace, releases: Releases) -> int:
    incoming = args.root / "updates" / "incoming"
    bundles = sorted(incoming.glob("*.tar*"), key=lambda p: p.stat().st_mtime) if incoming.is_dir() else []
    if not bundles:
        print("no update waiting")
        return 0
    bundle, key = bundles[-1], load_public_key(args.key)  # no key: the unit's fault, not the bundle's
    try:
        result = releases.apply(bundle, key, _health(args))
    except UpdateRefused as exc:
        if exc.reason in ("exam_running", "busy"):
            print(f"not now: {exc}")
            return 0
        folder = args.root / "updates" / "refused"
        folder.mkdir(parents=True, exist_ok=True)
        os.replace(bundle, folder / bundle.name)
        write_bytes_atomic(folder / f"{bundle.name}.json",
                           json.dumps({"reason": exc.reason, "detail": exc.detail}).encode())
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    folder = args.root / "updates" / "done"
    folder.mkdir(parents=True, exist_ok=True)
    os.replace(bundle, folder / bundle.name)
    for older in bundles[:-1]:  # superseded by the newer one just installed
        os.replace(older, folder / older.name)
    print(f"installed {result['version']} (was {result['replaced']})")
    return 0


def run(args: argparse.Namespace) -> int:
    releases = Releases(args.root)
    if args.action == "status":
        print(json.dumps(releases.status(), indent=2))
        return 0
    try:
        if args.action == "check":
            return _check(args, releases)
        if args.action == "apply":
            result = releases.apply(args.bundle, load_public_key(args.key), _health(args))
            print(f"installed {result['version']} (was {result['replaced']})")
        else:
            result = releases.rollback(_health(args))
            print(f"rolled back to {result['version']} (from {result['replaced']})")
    except UpdateRefused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    return 0
