"""Command line of the camera unit: ``python -m edge_app COMMAND``.

Commands:
  run --config FILE          run a session: print calibration, alerts and status as JSON lines
  --validate-config FILE     check a config file; exit 0 if it is usable, 2 with every problem otherwise
  detect IMAGE...            print what each model sees in each image (people, objects, pose, faces, identity)
  models                     list the built models, their files and int8 parity figures
  pair --config FILE CODE    hand a pairing code typed by staff to the running unit
  key --config FILE          print this unit's public key (PEM) for the bridge's device registry
  page --config FILE         serve the unit's own page (placement preview, staff functions) on the local network
  secret --config FILE       make the unit's admin secret at first boot and print it (once; never again)
  seed [--seed FILE]         first boot: copy the boot partition's seed file into the state root, scrub its secrets
  enrol --config FILE --code-file FILE   first boot: enrol with the bridge using a one-time code (edge_app/enrol.py)
  update ACTION              signed updates: apply BUNDLE, check, rollback, status (edge_app/update/cli.py)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from edge_app.update import cli as update_cli
from edge_app.vision.models import DEFAULT_DIR, read_manifest
from edge_app.vision.runtime import RUNTIMES, ModelError

SEED_FILE = Path("/boot/firmware/invigil-seed.toml")  # on the boot partition (FAT)
STATE_ROOT = "/var/lib/invigil"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m edge_app", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--validate-config", type=Path, metavar="FILE", help="check a config file and exit")
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser("run", help="run a session from a config file, printing alerts as they happen")
    run.add_argument("--config", type=Path, required=True, metavar="FILE", help="the unit's TOML config")
    run.add_argument("--text", action="store_true", help="one readable line per message instead of JSON")
    pair = commands.add_parser("pair", help="hand a typed pairing code to the running unit")
    pair.add_argument("--config", type=Path, required=True, metavar="FILE", help="the unit's TOML config")
    pair.add_argument("code", help="the code the PC exam client shows (dashes and case do not matter)")
    key = commands.add_parser("key", help="print this unit's public key (created if missing)")
    key.add_argument("--config", type=Path, required=True, metavar="FILE", help="the unit's TOML config")
    page = commands.add_parser("page", help="serve the unit's own page (placement preview, staff functions)")
    page.add_argument("--config", type=Path, required=True, metavar="FILE", help="the unit's TOML config")
    secret = commands.add_parser("secret", help="make the unit's admin secret and print it once")
    secret.add_argument("--config", type=Path, required=True, metavar="FILE", help="the unit's TOML config")
    seed = commands.add_parser("seed", help="copy the seed file into the state root and scrub its secrets")
    seed.add_argument("--seed", type=Path, default=SEED_FILE, help=f"the seed file (default {SEED_FILE})")
    seed.add_argument("--root", type=Path, default=Path(os.environ.get("INVIGIL_STATE_ROOT", STATE_ROOT)),
                      help=f"state root (default: $INVIGIL_STATE_ROOT or {STATE_ROOT})")
    enrol = commands.add_parser("enrol", help="enrol with the bridge using a one-time code (first boot)")
    enrol.add_argument("--config", type=Path, required=True, metavar="FILE", help="the unit's TOML config")
    enrol.add_argument("--code-file", type=Path, required=True, metavar="FILE",
                       help="the one-time code (removed once enrolled)")
    enrol.add_argument("--bridge-url", metavar="URL", help="the bridge (default: provision.json beside the code file)")
    enrol.add_argument("--device-id", metavar="ID", help="the device id to ask for (default: the code's, or one the "
                       "bridge draws)")
    update_cli.add_parser(commands)
    detect = commands.add_parser("detect", help="print what each model sees in each image")
    detect.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    detect.add_argument("--json", action="store_true", help="one JSON object per image instead of text")
    detect.add_argument("--float", action="store_true", help="use the float reference models instead of int8")
    detect.add_argument("--enrolled", type=Path, metavar="PHOTO", help="compare every face with this person")
    detect.add_argument("--models", type=Path, default=DEFAULT_DIR, help="folder with manifest.json")
    detect.add_argument("--threads", type=int, default=2, help="interpreter threads per model")
    detect.add_argument("--runtime", choices=RUNTIMES, help="TFLite runtime (default: the first installed)")
    models = commands.add_parser("models", help="list the built models and their parity figures")
    models.add_argument("--models", type=Path, default=DEFAULT_DIR, help="folder with manifest.json")
    return parser


def _detect(args: argparse.Namespace) -> int:
    from edge_app.describe import describe, format_text
    from edge_app.vision.identity import enroll
    from edge_app.vision.models import load_models
    from edge_app.vision.preprocess import read_rgb

    models = load_models(args.models, "float" if args.float else "int8", args.threads, args.runtime)
    enrolled = None
    if args.enrolled is not None:
        enrolled = enroll(models, read_rgb(str(args.enrolled)))
    if not args.json:
        print(f"models: {models.quant}, runtime {models.runtime}, {args.threads} threads")
    failures = 0
    for path in args.images:
        try:
            image = read_rgb(str(path))
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failures += 1
            continue
        info = describe(models, image, enrolled)
        if args.json:
            print(json.dumps({"image": str(path), **info}))
        else:
            print(format_text(str(path), info))
    return 1 if failures else 0


def _models(args: argparse.Namespace) -> int:
    manifest = read_manifest(args.models)
    for name, entry in manifest["models"].items():
        files = ", ".join(f"{q} {f['file']} ({f['bytes'] // 1024} KiB)" for q, f in entry["files"].items())
        verdict = "pass" if entry["parity"]["passed"] else "FAIL"
        print(f"{name} ({entry['source']['model']}, {entry['source']['licence']}): {files}; int8 parity {verdict}")
    return 0


def _validate(path: Path) -> int:
    from edge_app.config import ConfigError, load

    try:
        config = load(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"{path}: ok (device {config.device_id}, camera {config.camera.type}, rules {config.rules.preset})")
    return 0


def _pair(args: argparse.Namespace) -> int:
    from edge_app.config import ConfigError, load
    from edge_app.pairing import write_pair_code
    from edge_app.protocol import ProtocolError

    try:
        code = write_pair_code(load(args.config).data_dir, args.code)
    except (ConfigError, ProtocolError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"pairing code {code} handed to the unit; it is sent to the bridge within a second")
    return 0


def _key(args: argparse.Namespace) -> int:
    from edge_app.config import ConfigError, load
    from edge_app.protocol.keys import DeviceKeyError, load_or_create_key, public_pem

    try:
        config = load(args.config)
        key_file = config.link.under(config.data_dir, config.link.key_file) if config.link else \
            config.data_dir / "device.key"
        print(public_pem(load_or_create_key(key_file)), end="")
    except (ConfigError, DeviceKeyError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _secret(args: argparse.Namespace) -> int:
    from edge_app import admin_secret
    from edge_app.config import ConfigError, load

    try:
        made = admin_secret.ensure(load(args.config).data_dir)
    except (ConfigError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if made is None:
        print("this unit has its admin secret already; it is shown only once, when it is made", file=sys.stderr)
        return 1
    print(made)
    return 0


def _seed(args: argparse.Namespace) -> int:
    from edge_app.seed import SeedError, apply_seed

    try:
        record = apply_seed(args.seed, args.root)
    except (SeedError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(record))
    return 0


def _enrol(args: argparse.Namespace) -> int:
    from edge_app.config import ConfigError, load
    from edge_app.enrol import EnrolError, enrol
    from edge_app.protocol.keys import DeviceKeyError

    try:
        done = enrol(load(args.config), args.code_file, args.bridge_url, args.device_id)
    except (ConfigError, DeviceKeyError, EnrolError, OSError) as exc:
        print(f"error: enrolment failed: {exc}", file=sys.stderr)
        return 1
    broker = done["broker"]
    print(f"enrolled as {done['device_id']} (software {done['software_version']}, models {done['model_version']}); "
          f"broker {broker['host']}:{broker['port']}{' TLS' if broker['tls'] else ''}"
          f"{' (verified by the CA the bridge sent, kept in ' + done['ca_file'] + ')' if done.get('ca_file') else ''}"
          f"; settings in {done['env_file']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.validate_config is not None:
        return _validate(args.validate_config)
    if args.command is None:
        parser.error("a command is required (run, pair, key, page, secret, seed, enrol, update, detect, models) "
                     "or --validate-config FILE")
    try:
        if args.command == "run":
            from edge_app.run import run_session

            return run_session(args.config, text=args.text)
        if args.command == "page":
            from edge_app.page.serve import serve

            return serve(args.config)
        if args.command in ("seed", "update"):
            return _seed(args) if args.command == "seed" else update_cli.run(args)
        if args.command == "secret":
            return _secret(args)
        if args.command == "enrol":
            return _enrol(args)
        if args.command in ("pair", "key"):
            return _pair(args) if args.command == "pair" else _key(args)
        return _detect(args) if args.command == "detect" else _models(args)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
