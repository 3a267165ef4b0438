"""The fleet's commands of ``python -m cloud_bridge``: enrolment codes, staff accounts and their unlocking
(audited as ``cli``)."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cloud_bridge.config import load

Command = Callable[..., argparse.ArgumentParser]


def add_commands(commands: argparse._SubParsersAction, command: Command) -> None:
    code = command("enrol-code", "issue a one-time enrolment code for a new unit (printed once)")
    code.add_argument("--device", metavar="ID", help="the device id the unit must take (default: its own choice)")
    code.add_argument("--ttl", type=float, metavar="SECONDS", help="how long it stays valid (default: fleet.code_ttl)")
    code.add_argument("--label", default="", help="a note: where the unit goes, who sets it up")
    group = commands.add_parser("staff", help="staff accounts").add_subparsers(dest="action", required=True)
    add = command("add", "add a staff account (the first one, or when no one can log in)", group)
    add.add_argument("username")
    add.add_argument("--role", choices=("staff", "reviewer"), default="staff", help="reviewer: review only, of the "
                     "exams staff assign to it (default: staff)")
    add.add_argument("--password-file", type=Path, metavar="FILE", help="read the password from FILE (default: "
                     "asked on the terminal)")
    unlock = command("unlock", "unlock an account locked after too many failed logins (clears its count)", group)
    unlock.add_argument("username")


def run(args: argparse.Namespace) -> int | None:
    """Run a fleet command; None when ``args`` names another."""
    if args.command not in ("enrol-code", "staff"):
        return None
    from cloud_bridge.fleet import build
    from cloud_bridge.store import Store

    config = load(args.config)
    store = Store(config.database_url)
    try:
        fleet = build(config, store, None)
        if args.command == "enrol-code":
            issued = fleet.enrolment.issue("cli", args.device, args.ttl, args.label)
            until = datetime.fromtimestamp(issued["expires_at"], UTC).strftime("%Y-%m-%d %H:%M UTC")
            print(f"{issued['code']}  (one unit, until {until}"
                  + (f", device {issued['device_id']}" if issued["device_id"] else "") + ")")
            return 0
        if args.action == "unlock":
            done = fleet.staff.unlock(args.username, "cli")
            print(f"staff user {args.username} " + ("unlocked" if done["was_locked"] else "was not locked")
                  + f" ({done['failures']} failed logins cleared)")
            return 0
        if args.password_file is not None:
            password = args.password_file.read_text(encoding="utf-8").rstrip("\r\n")
        else:
            password = getpass.getpass(f"password for {args.username}: ")
            if getpass.getpass("again: ") != password:
                print("error: the passwords differ", file=sys.stderr)
                return 2
        fleet.staff.create(args.username, password, "cli", args.role)
        print(f"{args.role} user {args.username} added")
        return 0
    finally:
        store.close()
