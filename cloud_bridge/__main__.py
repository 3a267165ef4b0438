"""Command line of the cloud bridge: ``python -m cloud_bridge COMMAND`` (or ``invigil-bridge``).

Commands:
  --validate-config FILE                       check a config; exit 0 if usable, 2 with every problem
  serve --config FILE                          run the consumers, the health sweeper and the HTTP API
  device add --config FILE ID --public-key PEM --password-out FILE
                                               register a unit (its signing key and a new MQTT password)
  device list --config FILE                    the registry with each unit's health
  token create --config FILE --role ROLE --label TEXT [--exam EXAM ...]
                                               a new API token (client, or proctor of the exams named),
                                               printed once
  broker-config --config FILE --out DIR [--host H] [--port N] [--proctor NAME:PASSWORD_FILE]
                [--admin NAME:PASSWORD_FILE]
                [--tls-ca PEM --tls-cert PEM --tls-key PEM [--require-certificate] [--tls-version V]]
                [--allow-plaintext] [--plugin SO] [--user NAME]
                                               Mosquitto config and accounts (dynamic-security plugin)
                                               from the registry; restart Mosquitto to apply them
  enrol-code --config FILE [--device ID] [--ttl SECONDS] [--label TEXT]
                                               a one-time enrolment code for a new unit, printed once
  staff add --config FILE USERNAME [--password-file FILE]
                                               a staff account (enrolment codes, fleet, revocation)
  staff unlock --config FILE USERNAME          unlock an account locked after too many failed logins
  key --config FILE                            the bridge's public key (PEM) that units verify commands with
  dead-letters --config FILE [--replay REASON] rejected messages by reason; handle those of REASON again
  gaps --config FILE --device ID [--after N] [--limit N] [--json]
                                               a unit's gaps: range, reason, events lost, flagged, filled
  export --config FILE --session ID --out FILE a session's signed events, hash chain and keys, sealed
  verify FILE [--device-key PEM] [--bridge-key PEM]
                                               check an export offline; exit 1 naming the line that fails
  report --config FILE --session ID --out DIR [--format html|pdf]
                                               a session's report (timeline, score, decisions, snapshots)
  regulator-feed --config FILE --exam EXAM --out FILE
                                               per candidate risk and decisions, signed (FILE.sig beside it)
  verify-feed FILE [--sig FILE.sig] [--bridge-key PEM]
                                               check a regulator feed's signature offline; exit 1 if it fails
  purge --config FILE [--dry-run] [--by NAME]  delete the evidence retention says is due (docs/review.md)
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from cloud_bridge.config import ConfigError, load
from cloud_bridge.fleet_cli import add_commands as add_fleet_commands
from cloud_bridge.fleet_cli import run as run_fleet_command
from cloud_bridge.review_cli import add_commands as add_review_commands
from cloud_bridge.review_cli import run as run_review_command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cloud_bridge", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--validate-config", type=Path, metavar="FILE", help="check a config file and exit")
    commands = parser.add_subparsers(dest="command")

    def command(name: str, help_text: str, parent: argparse._SubParsersAction | None = None) -> argparse.ArgumentParser:
        sub = (parent or commands).add_parser(name, help=help_text)
        sub.add_argument("--config", type=Path, required=True, metavar="FILE", help="the bridge's TOML config")
        return sub

    command("serve", "run the bridge")
    device = commands.add_parser("device", help="the device registry").add_subparsers(dest="action", required=True)
    add = command("add", "register a unit", device)
    add.add_argument("device_id")
    add.add_argument("--public-key", type=Path, required=True, help="the unit's public key (python -m edge_app key)")
    add.add_argument("--password-out", type=Path, required=True, help="write the unit's new MQTT password here "
                     "(0600; copy it to the unit's password_file)")
    command("list", "list the registered units", device)
    token = commands.add_parser("token", help="API tokens").add_subparsers(dest="action", required=True)
    create = command("create", "create a token", token)
    create.add_argument("--role", choices=("client", "proctor"), required=True)
    create.add_argument("--label", required=True, help="who holds it (to revoke it later)")
    create.add_argument("--exam", action="append", default=[], metavar="EXAM",
                        help="an exam a proctor token may see (once per exam; required for proctors)")
    broker = command("broker-config", "write Mosquitto's config and accounts from the registry")
    broker.add_argument("--out", type=Path, required=True, metavar="DIR")
    broker.add_argument("--host", default="127.0.0.1", help="address to listen on (beyond loopback: TLS, or "
                        "--allow-plaintext)")
    broker.add_argument("--port", type=int, default=1883)
    broker.add_argument("--proctor", action="append", default=[], metavar="NAME:PASSWORD_FILE",
                        help="a read-only proctor account for the alerts topics")
    broker.add_argument("--admin", action="append", default=[], metavar="NAME:PASSWORD_FILE",
                        help="the bridge's broker admin account (fleet.broker_admin): adds and removes unit "
                        "accounts on the running broker")
    broker.add_argument("--tls-ca", type=Path, metavar="PEM", help="CA of client certificates (TLS listener)")
    broker.add_argument("--tls-cert", type=Path, metavar="PEM", help="the broker's certificate chain")
    broker.add_argument("--tls-key", type=Path, metavar="PEM", help="its private key")
    broker.add_argument("--require-certificate", action="store_true",
                        help="clients must also present a certificate signed by --tls-ca")
    broker.add_argument("--tls-version", choices=("tlsv1.2", "tlsv1.3"), default="tlsv1.2",
                        help="the oldest TLS version accepted")
    broker.add_argument("--allow-plaintext", action="store_true",
                        help="allow a plain-TCP listener beyond loopback (a trusted network only)")
    broker.add_argument("--plugin", type=Path, metavar="SO", help="Mosquitto's dynamic-security plugin "
                        "(default: the one installed with mosquitto)")
    broker.add_argument("--user", help="the Unix user Mosquitto runs as (default: mosquitto, when started as root); "
                        "it is given the accounts file and the data folder")
    command("key", "print the bridge's public key")
    add_fleet_commands(commands, command)
    dead = command("dead-letters", "count rejected messages by reason, or handle those of one reason again")
    dead.add_argument("--replay", metavar="REASON", help="e.g. internal (after a fix) or unknown_device (after "
                      "registering it); commands are not sent from a replay")
    gaps = command("gaps", "a unit's gaps: events lost on the way, or alerts it refused on a full disk")
    gaps.add_argument("--device", required=True, metavar="ID")
    gaps.add_argument("--after", type=int, default=0, metavar="N", help="only gaps with an id above N (a cursor)")
    gaps.add_argument("--limit", type=int, default=100, metavar="N", help="at most N gaps (1-500)")
    gaps.add_argument("--json", action="store_true", help="one JSON object per gap (as the HTTP API shows it)")
    add_review_commands(commands, command)
    return parser


def _serve(config_path: Path) -> int:
    from cloud_bridge.app import Bridge

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    bridge = Bridge(load(config_path))
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    bridge.start()
    print(f"bridge serving on {bridge.url}", flush=True)
    stop.wait()
    bridge.stop()
    return 0


def _broker_config(args: argparse.Namespace) -> int:
    from cloud_bridge.broker import BrokerUser, Role, TlsFiles, hash_password, write_broker_files
    from cloud_bridge.ingest import Ingestor
    from cloud_bridge.store import Store

    config = load(args.config)
    mqtt = config.mqtt
    if mqtt.username is None or mqtt.password_file is None:
        print("error: mqtt.username and mqtt.password_file must be set: the bridge needs its own account",
              file=sys.stderr)
        return 2
    users = [BrokerUser(mqtt.username, hash_password(mqtt.password_file.read_text().strip()), "bridge")]
    extra: list[tuple[Role, list[str]]] = [("proctor", args.proctor), ("control", args.admin)]
    for role, entries in extra:
        for entry in entries:
            name, _, password_file = entry.partition(":")
            users.append(BrokerUser(name, hash_password(Path(password_file).read_text().strip()), role))
    store = Store(config.database_url)
    devices = Ingestor(store).devices()
    store.close()
    users += [BrokerUser(d.device_id, d.mqtt_password_hash, "device") for d in devices if d.mqtt_password_hash]
    tls_files = [args.tls_ca, args.tls_cert, args.tls_key]
    if (any(tls_files) and not all(tls_files)) or (args.require_certificate and not any(tls_files)):
        print("error: a TLS listener needs --tls-ca, --tls-cert and --tls-key together", file=sys.stderr)
        return 2
    for path in filter(None, tls_files):
        if not path.is_file():
            print(f"error: {path} is not a file", file=sys.stderr)
            return 2
    tls = (TlsFiles(args.tls_ca.resolve(), args.tls_cert.resolve(), args.tls_key.resolve(), args.require_certificate,
                    args.tls_version) if all(tls_files) else None)
    files = write_broker_files(args.out, users, args.host, args.port, tls=tls, user=args.user, plugin=args.plugin,
                               allow_plaintext=args.allow_plaintext, bridge_client_prefixes=[mqtt.client_prefix])
    print(f"wrote {files.conf} and {files.dynsec}: {len(users)} accounts, "
          f"{'TLS' if tls else 'plain TCP'} on {args.host}:{args.port}; restart Mosquitto to apply them")
    return 0


def _registry(args: argparse.Namespace) -> int:
    from cloud_bridge.broker import hash_password, new_password
    from cloud_bridge.ingest import Ingestor
    from cloud_bridge.store import Store
    from cloud_bridge.tokens import Tokens
    from edge_app.atomic import write_bytes_atomic
    from edge_app.protocol.keys import load_or_create_key, public_pem

    config = load(args.config)
    if args.command == "dead-letters":
        return _dead_letters(config.database_url, args.replay)
    if args.command == "gaps":
        return _gaps(config.database_url, args)
    if args.command == "key":
        print(public_pem(load_or_create_key(config.key_file)), end="")
        return 0
    store = Store(config.database_url)
    try:
        if args.command == "token":
            print(Tokens(store).create(args.role, args.label, args.exam))
        elif args.action == "add":
            password = new_password()
            Ingestor(store).register(args.device_id, args.public_key.read_text(), hash_password(password))
            write_bytes_atomic(args.password_out, (password + "\n").encode(), mode=0o600)
            print(f"registered {args.device_id}; its MQTT password is in {args.password_out}; "
                  "run broker-config and restart Mosquitto to let it in")
        else:
            for d in Ingestor(store).devices():
                print(f"{d.device_id:<15} {d.status:<8} last seen {d.last_seen or 0:.0f}  events {d.last_seq}")
    finally:
        store.close()
    return 0


def _gaps(url: str, args: argparse.Namespace) -> int:
    import json

    from cloud_bridge.gaps import describe, device_gaps, device_known
    from cloud_bridge.store import Store

    store = Store(url)
    try:
        if not device_known(store, args.device):
            print(f"error: no device {args.device} is registered", file=sys.stderr)
            return 2
        gaps = device_gaps(store, args.device, args.after, args.limit)
    finally:
        store.close()
    for gap in gaps:
        print(json.dumps(gap, sort_keys=True) if args.json else describe(gap))
    if not args.json:
        open_ = sum(gap["lost"] for gap in gaps)
        print(f"{len(gaps)} gaps of {args.device}, {open_} events lost" if gaps else f"no gaps of {args.device}")
    return 0


def _dead_letters(url: str, replay: str | None) -> int:
    from sqlalchemy import func, select

    from cloud_bridge.services import Services
    from cloud_bridge.store import Store
    from cloud_bridge.store.models import DeadLetter, DeadLetterTally

    store = Store(url)
    try:
        if replay is not None:
            outcomes = Services.build(store).dispatcher.replay(replay)
            print(f"replayed {sum(outcomes.values())} {replay} dead letters: "
                  + (", ".join(f"{n} {o}" for o, n in sorted(outcomes.items())) or "none kept"))
        with store.session() as session:
            counts = session.execute(select(DeadLetter.reason, func.count()).group_by(DeadLetter.reason)).all()
            tallies = session.scalars(select(DeadLetterTally).order_by(DeadLetterTally.source,
                                                                       DeadLetterTally.reason)).all()
        for reason, count in sorted(counts):
            print(f"{reason:<16} {count}")
        if tallies:
            print("rejected in all (kept or only counted while a unit flooded):")
        for tally in tallies:
            print(f"  {tally.source:<14} {tally.reason:<16} {tally.count} ({tally.kept} kept, {tally.bytes} bytes)")
    finally:
        store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.validate_config is not None:
            load(args.validate_config)
            print(f"{args.validate_config}: ok")
            return 0
        if args.command is None:
            parser.error("a command is required, or --validate-config FILE")
        if args.command == "serve":
            return _serve(args.config)
        if args.command == "broker-config":
            return _broker_config(args)
        for run in (run_fleet_command, run_review_command):
            if (done := run(args)) is not None:
                return done
        return _registry(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
