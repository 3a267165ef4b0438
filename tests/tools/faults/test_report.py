"""The fault suite's verdicts: lost, doubled, unreceipted or falsely flagged events fail; extra copies on the
proctor topic are 'at least once'; the gap a full disk really caused passes. And the table and the page."""

from __future__ import annotations

import dataclasses
import datetime

import pytest

from tools.faults.observe import Tally
from tools.faults.report import HEADER, Row, markdown, table

CLEAN = Tally(accepted=40, stored=40, delivered=40, extra_rows=0, extra_copies=0, missing_stored=0,
              missing_delivered=0, gaps=(), flags=(), waiting=0)


@pytest.mark.parametrize("change, expected, failure", [
    ({}, "pass", None),
    ({"extra_copies": 3}, "at least once", None),
    ({"stored": 39, "missing_stored": 1}, "FAIL", "1 accepted events never stored"),
    ({"delivered": 38, "missing_delivered": 2}, "FAIL", "2 stored events never reached the proctor"),
    ({"extra_rows": 1}, "FAIL", "1 events stored twice"),
    ({"gaps": (("missing", 2),), "flags": (("gap", 1),)}, "FAIL", "gaps [('missing', 2)] where [] was lost"),
    ({"flags": (("broken_chain", 1),)}, "FAIL", "events flagged broken_chain x1"),
    ({"waiting": 5}, "FAIL", "5 events never receipted"),
    ({"accepted": 0, "stored": 0, "delivered": 0}, "FAIL", "no event accepted"),
])
def test_verdicts(change: dict[str, object], expected: str, failure: str | None) -> None:
    row = Row("fault", dataclasses.replace(CLEAN, **change))  # type: ignore[arg-type]
    assert row.verdict == expected
    assert (failure in row.failures) if failure else row.failures == []


def test_a_full_disk_passes_when_the_gap_is_what_it_refused() -> None:
    tally = dataclasses.replace(CLEAN, gaps=(("disk_full", 12),), flags=(("disk_full", 1),))
    assert Row("disk", tally, expected_gaps=(("disk_full", 12),)).verdict == "pass"
    assert Row("disk", tally, expected_gaps=(("disk_full", 11),)).verdict == "FAIL"


def test_the_table_and_the_page_hold_every_row() -> None:
    rows = [Row("broker restart", CLEAN, notes=["restarted"]),
            Row("bridge SIGKILL", dataclasses.replace(CLEAN, extra_copies=2))]
    text = table(rows)
    assert text.splitlines()[0].split("  ")[0] == "fault" and "broker restart: restarted" in text
    page = markdown(rows, "make faults", "40 events", datetime.datetime(2026, 1, 2, 3, 4, tzinfo=datetime.UTC))
    assert "2026-01-02 03:04 UTC" in page and "`make faults`" in page and "cores" in page
    assert "| " + " | ".join(HEADER) + " |" in page
    assert "| bridge SIGKILL | 40 | 40 | 40 | 2 | 0 | at least once |" in page
