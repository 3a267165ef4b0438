"""The fault suite's table: one row per fault, its verdict, printed and written to docs/reliability.md."""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edge_app.atomic import write_bytes_atomic
from tools.faults.observe import Tally

HEADER = ("fault", "events accepted", "stored", "delivered to proctor", "duplicates", "gaps flagged", "verdict")


@dataclass
class Row:
    fault: str
    tally: Tally
    expected_gaps: tuple[tuple[str, int], ...] = ()  # what was really lost: (reason, events)
    problems: list[str] = field(default_factory=list)  # fault-specific failures (a rogue that got through)
    notes: list[str] = field(default_factory=list)  # what the fault did and saw

    @property
    def failures(self) -> list[str]:
        t, out = self.tally, list(self.problems)
        if t.accepted == 0:
            out.append("no event accepted")
        if t.missing_stored:
            out.append(f"{t.missing_stored} accepted events never stored")
        if t.missing_delivered:
            out.append(f"{t.missing_delivered} stored events never reached the proctor")
        if t.extra_rows:
            out.append(f"{t.extra_rows} events stored twice")
        if t.gaps != self.expected_gaps:
            out.append(f"gaps {list(t.gaps)} where {list(self.expected_gaps)} was lost")
        wrong = [f"{flag} x{n}" for flag, n in t.flags if flag not in {reason for reason, _ in self.expected_gaps}]
        if wrong:
            out.append(f"events flagged {', '.join(wrong)}")
        if t.waiting:
            out.append(f"{t.waiting} events never receipted")
        return out

    @property
    def verdict(self) -> str:
        """``pass``: every accepted event stored and delivered exactly once, gaps only for what was lost;
        ``at least once``: the same, but the proctor topic carried extra copies of some alerts (same alert id);
        ``FAIL`` otherwise."""
        if self.failures:
            return "FAIL"
        return "at least once" if self.tally.extra_copies else "pass"

    def cells(self) -> tuple[str, ...]:
        t = self.tally
        gaps = ", ".join(f"{reason} {count}" for reason, count in t.gaps) or "0"
        return (self.fault, str(t.accepted), str(t.stored), str(t.delivered), str(t.duplicates), gaps, self.verdict)


def table(rows: Sequence[Row]) -> str:
    """A plain-text table for the terminal, then each row's failures and notes."""
    cells = [HEADER, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADER))]
    lines = ["  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)).rstrip()
             for line in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    for row in rows:
        for text in row.failures:
            lines.append(f"{row.fault}: FAIL: {text}")
        for text in row.notes:
            lines.append(f"{row.fault}: {text}")
    return "\n".join(lines)


def markdown(rows: Sequence[Row], command: str, settings: str, when: datetime.datetime | None = None) -> str:
    stamp = (when or datetime.datetime.now(datetime.UTC)).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Reliability: the fault suite",
        "",
        f"Latest run: {stamp}, on a machine with {os.cpu_count()} cores, by `{command}` ({settings}).",
        "",
        "Each fault runs against a fresh deployed stack as processes: Mosquitto with the accounts and rights of",
        "`python -m cloud_bridge broker-config` (dynamic-security plugin), `python -m cloud_bridge serve` on",
        "SQLite, a proctor subscribed to the exam's alerts topic (persistent session, QoS 1), and a paired unit",
        "built from the project's own outbox, MQTT link and receipts (`tools/faults/unit.py`) writing signed",
        "events; the unit and the bridge reach the broker through loopback TCP proxies (`tools/faults/proxy.py`)",
        "whose network a fault can cut. *Accepted* is every sequence number the unit's outbox gave out; *stored*",
        "counts those stored exactly once; *delivered* the stored events the proctor received; *duplicates* the",
        "extra stored rows plus the extra copies on the proctor topic; *gaps flagged* what the bridge recorded as",
        "lost. Verdicts: **pass**, every accepted event stored and delivered exactly once, the unit's outbox",
        "emptied by receipts, and gaps flagged only for what was really lost (the alerts a full disk refused);",
        "**at least once**, the same except that the proctor topic carried extra copies of some alerts (each copy",
        "with the alert's own `id`, so a proctor client drops it; the proctor page, read from the store, shows",
        "each alert once); **FAIL**, anything lost, stored twice, falsely flagged or never receipted.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
        *("| " + " | ".join(row.cells()) + " |" for row in rows),
        "",
        "Extra copies on the proctor topic come from its at-least-once delivery (docs/bridge.md, \"Delivery\"): a",
        "bridge killed after the broker acknowledged an alert's republish but before its relay marked the row",
        "sent (it marks every 0.2 s) publishes that row again when it restarts, and a QoS 1 message in flight",
        "when a broker stops can arrive twice. The store holds each alert once and the proctor page shows it",
        "once; an MQTT consumer of the alerts topic drops repeats by `id`.",
        "",
        "What each fault did and saw:",
        "",
    ]
    for row in rows:
        copies = [f"{row.tally.extra_copies} extra copies on the proctor topic"] if row.tally.extra_copies else []
        detail = [*(f"**{text}**" for text in row.failures), *copies, *row.notes]
        lines.append(f"- **{row.fault}**: " + ("; ".join(detail) if detail else "as the table says") + ".")
    return "\n".join(lines) + "\n"


def write_markdown(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode())
