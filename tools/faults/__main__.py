"""``python -m tools.faults``: run the faults, print the table, write docs/reliability.md (exit 1 when a fault
loses, doubles or falsely flags an event; extra copies on the proctor topic are shown, not failed)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tools.faults.faults import FAULTS, run_fault
from tools.faults.report import Row, markdown, table, write_markdown

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.faults", description=__doc__)
    parser.add_argument("--events", type=int, default=400, help="events the unit writes per fault (default 400)")
    parser.add_argument("--rate", type=float, default=40.0, help="events a second (default 40)")
    parser.add_argument("--only", action="append", choices=sorted(FAULTS), metavar="FAULT",
                        help="run only this fault (repeatable): " + "; ".join(FAULTS))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "reliability.md",
                        help="where the table goes (default docs/reliability.md; not written with --only)")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="run under DIR and keep its logs and databases")
    args = parser.parse_args(argv)
    if args.events < 12 or args.rate <= 0:
        parser.error("--events must be at least 12 and --rate positive")
    names = args.only or list(FAULTS)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="invigil-faults-") as temp:
        root = args.keep or Path(temp)
        for name in names:
            print(f"fault: {name} ...", flush=True)
            rows.append(run_fault(name, root, args.events, args.rate))
            print(f"  {rows[-1].verdict}" + "".join(f"; {text}" for text in rows[-1].failures), flush=True)
    print()
    print(table(rows))
    if not args.only:
        command = "make faults" + (f" (python -m tools.faults --events {args.events} --rate {args.rate:g})"
                                   if (args.events, args.rate) != (400, 40.0) else "")
        settings = (f"{args.events} events per fault at {args.rate:g}/s; the unit's link: keepalive 5 s, reconnect "
                    "backoff 0.2-2 s, receipt timeout 10 s; the bridge: 2 consumers, keepalive 5 s")
        write_markdown(args.out, markdown(rows, command, settings))
        print(f"\nwrote {args.out}")
    return 1 if any(row.verdict == "FAIL" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
