"""Reports and the regulator feed over HTTP: a session's report as HTML or PDF, an exam's signed regulator feed.
Access as the review's (cloud_bridge/web/review_auth.py: staff, an assigned reviewer, or a proctor token of the
exam; 403 for another exam's); each is audited as ``export``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort

from cloud_bridge import audit
from cloud_bridge.regulator import feed
from cloud_bridge.report import ReportError, gather, report_html, report_pdf
from cloud_bridge.web import services
from cloud_bridge.web.review_auth import check_exam, require_viewer, session_exam, settings, viewer
from edge_app.protocol.commands import NAME

report_api = Blueprint("report_api", __name__, url_prefix="/api/v1")
SESSION_ID = 32


def _audited(target: str, detail: dict[str, Any]) -> None:
    with services().store.session() as session, session.begin():
        audit.record(session, viewer().actor, "export", target, detail)


@report_api.get("/sessions/<session_id>/report.html")
@require_viewer
def report_as_html(session_id: str) -> Any:
    """The session's report as one HTML file (styles, plot and snapshots inline)."""
    return _report(session_id, "html")


@report_api.get("/sessions/<session_id>/report.pdf")
@require_viewer
def report_as_pdf(session_id: str) -> Any:
    """The session's report as PDF."""
    return _report(session_id, "pdf")


def _report(session_id: str, kind: str) -> Any:
    session_exam(session_id)
    session_id = session_id[:SESSION_ID]
    try:
        gathered = gather(services().store, session_id, settings().weights)
    except ReportError as exc:
        abort(404, str(exc))
    data = report_html(gathered).encode("utf-8") if kind == "html" else report_pdf(gathered)
    _audited(session_id, {"report": kind, "bytes": len(data), "snapshots": len(gathered.snapshots)})
    name = f"session-{session_id}.{kind}"
    mimetype = "text/html" if kind == "html" else "application/pdf"
    headers = {"Content-Disposition": f'{"inline" if kind == "html" else "attachment"}; filename="{name}"'}
    if kind == "html":  # a self-contained file: nothing to load, nothing to run
        headers["Content-Security-Policy"] = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    return Response(data, mimetype=mimetype, headers=headers)


@report_api.get("/exams/<exam_id>/regulator-feed")
@require_viewer
def regulator_feed(exam_id: str) -> Any:
    """The exam's feed (canonical JSON); its detached signature in ``X-Invigil-Signature`` (the .sig file's
    JSON), to keep beside it for ``python -m cloud_bridge verify-feed``."""
    if not NAME.fullmatch(exam_id):
        abort(404, "no such exam")
    check_exam(exam_id)
    key = settings().key
    if key is None:
        abort(409, "this bridge has no signing key configured for exports")
    body, signature = feed(services().store, exam_id, key, settings().weights)
    _audited(exam_id, {"regulator_feed": True, "bytes": len(body)})
    return Response(body, mimetype="application/json", headers={
        "X-Invigil-Signature": signature.decode("ascii").strip(),
        "Content-Disposition": f'attachment; filename="regulator-feed-{exam_id}.json"'})
