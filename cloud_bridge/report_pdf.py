"""A session's report as PDF, with fpdf2 (pure Python, in the ``bridge`` extra: no browser on the bridge host):
the same content as the HTML report (cloud_bridge/report.py), the timeline drawn as vectors, snapshots
embedded as the JPEGs the unit sent. The PDF's standard fonts hold Latin-1 only: other characters of a note
print as ``?`` (the HTML report keeps them)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from cloud_bridge.web.plot import clock

if TYPE_CHECKING:
    from cloud_bridge.report import Report
    from cloud_bridge.timeline import SessionTimeline

COLOURS = {"critical": (192, 38, 45), "warning": (210, 155, 31), "info": (77, 124, 199)}
LABEL_W, ROW_H = 38.0, 6.0  # mm


def _text(value: object) -> str:
    return str(value).encode("latin-1", "replace").decode("latin-1")


class _Pdf(FPDF):
    def heading(self, text: str) -> None:
        self.ln(3)
        self.set_font("Helvetica", "B", 13)
        self.cell(0, 8, _text(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font("Helvetica", "", 10)

    def para(self, text: str, style: str = "") -> None:
        self.set_font("Helvetica", style, 10)
        self.multi_cell(0, 5, _text(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font("Helvetica", "", 10)


def _plot(pdf: _Pdf, t: SessionTimeline) -> None:
    """The timeline as on the HTML page: rows per alert kind and one for the exam PC, offline shaded."""
    times = [t.start, t.end, *(a.start for a in t.alerts), *(e.t / 1000 for e in t.pc_events)]
    lo, span = min(times), max(max(times) - min(times), 1.0)
    rows = [*sorted({a.kind for a in t.alerts}), "pc"]
    left, width = pdf.l_margin + LABEL_W, pdf.epw - LABEL_W
    if pdf.will_page_break(ROW_H * len(rows) + 10):
        pdf.add_page()
    top = pdf.get_y() + 2

    def x(at: float) -> float:
        return left + (min(max(at, lo), lo + span) - lo) / span * width

    pdf.set_font("Helvetica", "", 8)
    for index, name in enumerate(rows):
        pdf.set_fill_color(*((246, 247, 250) if index % 2 == 0 else (236, 238, 243)))
        pdf.rect(left, top + index * ROW_H, width, ROW_H, style="F")
        pdf.set_xy(pdf.l_margin, top + index * ROW_H)
        pdf.cell(LABEL_W - 2, ROW_H, _text("exam PC" if name == "pc" else name.replace("_", " ")), align="R")
    bottom = top + ROW_H * len(rows)
    pdf.set_fill_color(190, 196, 208)
    for start, end in t.offline:
        stop = t.end if end is None else end
        pdf.rect(x(start), top, max(0.4, x(stop) - x(start)), bottom - top, style="F")
    for alert in t.alerts:
        pdf.set_fill_color(*COLOURS.get(alert.severity, COLOURS["warning"]))
        end = t.end if alert.end is None else alert.end
        pdf.rect(x(alert.start), top + rows.index(alert.kind) * ROW_H + 1.2, max(0.8, x(end) - x(alert.start)),
                 ROW_H - 2.4, style="F")
    pdf.set_draw_color(91, 63, 168)
    for event in t.pc_events:
        at = x(event.t / 1000)
        pdf.line(at, bottom - ROW_H + 1, at, bottom - 1)
    pdf.set_draw_color(150, 156, 170)
    pdf.line(left, bottom, left + width, bottom)
    for share in (0.0, 0.25, 0.5, 0.75, 1.0):
        at = lo + share * span
        pdf.set_xy(x(at) - 10, bottom + 0.5)
        pdf.cell(20, 4, ("-" if at < t.start else "") + clock(abs(at - t.start)), align="C")
    pdf.set_xy(pdf.l_margin, bottom + 6)
    pdf.set_font("Helvetica", "", 10)


def _decisions(pdf: _Pdf, report: Report, alert_id: str | None) -> None:
    status = report.review.statuses.get(alert_id)
    pdf.para(f"Decision: {(status.status if status else 'undecided').replace('_', ' ')}", "B")
    for d in status.history if status else ():
        note = f": {d.note}" if d.note else ""
        pdf.para(f"  - {d.verdict.replace('_', ' ')} by {d.reviewer} at {report.stamp(d.decided_at)}{note}")


def _snapshots(pdf: _Pdf, report: Report, digests: list[str]) -> None:
    for digest in digests:
        found = report.snapshots.get(digest)
        if found is None:
            pdf.para(f"Snapshot {digest}: {report.missing(digest)}", "I")
            continue
        if pdf.will_page_break(62):
            pdf.add_page()
        try:
            pdf.image(io.BytesIO(found[1]), h=60, keep_aspect_ratio=True)
        except Exception as exc:  # a snapshot the image reader cannot take: named, the report goes on
            pdf.para(f"Snapshot {digest}: cannot be shown ({type(exc).__name__})", "I")
        pdf.ln(2)


def render(report: Report) -> bytes:
    review, t = report.review, report.review.timeline
    pdf = _Pdf(format="A4")
    pdf.set_title(_text(f"Session report {t.session_id}"))
    pdf.set_creator("Invigil bridge")
    pdf.set_auto_page_break(True, 15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 9, "Session report", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.para(f"Exam {t.exam_id}, candidate {t.candidate_id}, session {t.session_id}, unit {t.device_id or 'none'} "
             f"({t.state}). From {report.when(t.start)} to {report.when(t.end)}; report made "
             f"{report.stamp(report.generated_at)}.")
    pdf.heading(f"Risk score: {review.score.score} / 100")
    for d in review.score.dimensions:
        pdf.para(f"{d.name}: {d.points:.1f} of {d.most:g} - {d.detail}")
    pdf.heading("Decision on the session")
    _decisions(pdf, report, None)
    pdf.heading("Timeline")
    _plot(pdf, t)
    placement = {True: "usable", False: "never usable", None: "not reported"}[t.placement_usable]
    pdf.para(f"Offline: {len(t.offline)} stretch(es); events lost in gaps: {t.lost_events}; placement {placement}.")
    pdf.heading(f"Alerts ({len(t.alerts)})")
    for number, a in enumerate(t.alerts, 1):
        keyword = f' ("{a.keyword}")' if a.keyword else ""
        still = " (still open at the end)" if a.end is None else ""
        pdf.para(f"#{number} {a.kind.replace('_', ' ')}{keyword}, {a.severity}, confidence {a.confidence:.2f}, "
                 f"at +{clock(a.start - t.start)}, {a.duration(t.end):.0f} s{still}", "B")
        _decisions(pdf, report, a.alert_id)
        _snapshots(pdf, report, a.evidence)
    if not t.alerts:
        pdf.para("No alert from the unit.")
    pdf.heading(f"Exam PC events ({len(t.pc_events)})")
    for event in t.pc_events:
        pdf.para(f"+{clock(event.t / 1000 - t.start)}  {event.kind.replace('_', ' ')}")
    return bytes(pdf.output())
