"""A session's report for the record, as one self-contained HTML file (:func:`report_html`: the timeline plot as
inline SVG, the risk score with its breakdown, every alert with its snapshots inline as ``data:`` URIs, the
decisions with who and when) and as PDF (:func:`report_pdf`, cloud_bridge/report_pdf.py, the same content).

Both read the session's review (cloud_bridge/review.py: timeline, score, decisions) and its snapshots; a
snapshot retention deleted is named with the reason and the date of its purge.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select

from cloud_bridge.review import SessionReview, session_review
from cloud_bridge.risk import RiskWeights
from cloud_bridge.store import Store
from cloud_bridge.store.models import Evidence, Purge
from cloud_bridge.web.plot import clock, timeline_svg

TEMPLATES = Path(__file__).resolve().parent / "web" / "templates"
MAX_SNAPSHOTS = 400  # snapshots inlined in one report at most (the rest are listed by digest)


class ReportError(ValueError):
    """No such session."""


@dataclass
class Report:
    """What a report shows."""

    review: SessionReview
    generated_at: float
    snapshots: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # digest -> content type, data
    purged: dict[str, tuple[str, float]] = field(default_factory=dict)  # digest -> reason, when

    def when(self, at: float | None) -> str:
        """A time of the session as UTC and as minutes from its start."""
        if at is None:
            return "-"
        stamp = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"{stamp} (+{clock(at - self.review.timeline.start)})"

    @staticmethod
    def stamp(at: float) -> str:
        return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    def snapshot_uri(self, digest: str) -> str | None:
        found = self.snapshots.get(digest)
        if found is None:
            return None
        content_type, data = found
        return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"

    def missing(self, digest: str) -> str:
        """Why a snapshot is not shown."""
        purged = self.purged.get(digest)
        if purged is not None:
            return f"deleted by retention ({purged[0]}) on {self.stamp(purged[1])}"
        return "not uploaded by the unit (or over the report's limit)"


def gather(store: Store, session_id: str, weights: RiskWeights | None = None,
           now: float | None = None) -> Report:
    """The report of ``session_id``; ReportError when there is no such session."""
    at = time.time() if now is None else now
    review = session_review(store, session_id, weights or RiskWeights(), at)
    if review is None:
        raise ReportError(f"no session {session_id}")
    digests = [digest for alert in review.timeline.alerts for digest in alert.evidence]
    report = Report(review, at)
    with store.session() as session:
        for start in range(0, min(len(digests), MAX_SNAPSHOTS), 100):
            part = digests[start:min(start + 100, MAX_SNAPSHOTS)]
            for digest, content_type, data in session.execute(
                    select(Evidence.digest, Evidence.content_type, Evidence.data).where(Evidence.digest.in_(part))):
                report.snapshots[digest] = (content_type, bytes(data))
        missing = [d for d in digests if d not in report.snapshots]
        for start in range(0, len(missing), 500):
            for digest, reason, deleted_at in session.execute(
                    select(Purge.digest, Purge.reason, Purge.deleted_at).where(
                        Purge.digest.in_(missing[start:start + 500]))):
                report.purged[digest] = (reason, deleted_at)
    return report


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.globals["clock"] = clock
    return env


def report_html(report: Report) -> str:
    """The report as one HTML file: no external resource (styles, plot and snapshots are inline)."""
    review = report.review
    return _environment().get_template("report.html").render(
        report=report, t=review.timeline, score=review.score, review=review, plot=timeline_svg(review.timeline))


def report_pdf(report: Report) -> bytes:
    """The report as PDF (cloud_bridge/report_pdf.py)."""
    from cloud_bridge.report_pdf import render

    return render(report)


def write_reports(store: Store, session_id: str, out: Path, weights: RiskWeights | None = None,
                  formats: tuple[str, ...] = ("html", "pdf")) -> list[Path]:
    """Write ``session-<id>.html`` and ``.pdf`` under ``out``; the paths written."""
    from edge_app.atomic import write_bytes_atomic

    report = gather(store, session_id, weights)
    written = []
    for kind in formats:
        path = out / f"session-{session_id}.{kind}"
        data = report_html(report).encode("utf-8") if kind == "html" else report_pdf(report)
        write_bytes_atomic(path, data)
        written.append(path)
    return written
