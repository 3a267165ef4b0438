"""Session reports (cloud_bridge/report.py, report_pdf.py) on SQLite and PostgreSQL: the HTML holds the plot, the
score's breakdown, the decisions with who and when and the snapshots inline; the PDF is a PDF with the same
snapshots embedded; a purged snapshot is named with its reason. Over HTTP: access as the review's, audited."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from cloud_bridge import audit
from cloud_bridge.decisions import Decisions
from cloud_bridge.report import ReportError, gather, report_html, report_pdf, write_reports
from cloud_bridge.retention import Retention
from cloud_bridge.store import Store
from cloud_bridge.tokens import Tokens
from cloud_bridge.web import create_app
from cloud_bridge.web.review_auth import REVIEW, ReviewSettings
from tests.bridge.parts import BRIDGE_KEY, T0
from tests.bridge.review_parts import Scene, paired_session


def jpeg(shade: int) -> bytes:
    image = np.full((48, 64, 3), shade, np.uint8)
    return bytes(cv2.imencode(".jpg", image)[1])


def reviewed(store: Store) -> tuple[Scene, str, str]:
    """A session with two alerts (snapshots), one confirmed by two reviewers' history, one dismissed."""
    scene = paired_session(store)
    phone = scene.unit.alert(T0 + 60, T0 + 90, "phone", snapshot=jpeg(40))
    gaze = scene.unit.alert(T0 + 120, T0 + 125, "gaze_away", "warning", snapshot=jpeg(200))
    decisions = Decisions(store, clock=lambda: T0 + 3600)
    decisions.decide(scene.session_id, phone, "second_look", "unclear", "rita", "staff:rita")
    decisions.decide(scene.session_id, phone, "confirmed", "phone in hand <clearly>", "omar", "staff:omar")
    decisions.decide(scene.session_id, gaze, "dismissed", "reading the question", "rita", "staff:rita")
    scene.services.sessions.end(scene.session_id)
    return scene, phone, gaze


def test_the_html_report_holds_plot_score_decisions_and_snapshots(store: Store) -> None:
    scene, phone, gaze = reviewed(store)
    html = report_html(gather(store, scene.session_id, now=T0 + 7200))
    assert "<svg" in html and f'data-alert="{phone}"' in html  # the timeline plot, inline
    assert "Risk score" in html and "alerts" in html and "health" in html and "pc" in html
    assert "confirmed by <b>omar</b>" in html and "second look by <b>rita</b>" in html
    assert "dismissed by <b>rita</b>" in html and "phone in hand &lt;clearly&gt;" in html  # notes escaped
    uris = re.findall(r'src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"', html)
    assert sorted(base64.b64decode(u) for u in uris) == sorted([jpeg(40), jpeg(200)])
    outside = html.replace('xmlns="http://www.w3.org/2000/svg"', "")  # the SVG namespace is a name, not a load
    assert not re.search(r'(src|href)="(?!data:)', outside) and "http" not in outside  # nothing loaded from outside
    assert gaze in html


def test_the_pdf_report_embeds_the_snapshots(store: Store) -> None:
    scene, _phone, _gaze = reviewed(store)
    pdf = report_pdf(gather(store, scene.session_id, now=T0 + 7200))
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert pdf.count(b"/Subtype /Image") == 2 and b"/DCTDecode" in pdf


def test_a_purged_snapshot_is_named_with_its_reason(store: Store) -> None:
    scene, _phone, _gaze = reviewed(store)
    purged = Retention(store, None).purge(now=T0 + 3600 + 25 * 3600)
    assert [d.reason for d in purged.purged] == ["dismissed"]
    report = gather(store, scene.session_id)
    assert len(report.snapshots) == 1
    assert "deleted by retention (dismissed)" in report_html(report)
    assert report_pdf(report).count(b"/Subtype /Image") == 1


def test_no_such_session(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ReportError):
        gather(store, "nope")
    scene, _phone, _gaze = reviewed(store)
    written = write_reports(store, scene.session_id, tmp_path / "out")
    assert [p.name for p in written] == [f"session-{scene.session_id}.html", f"session-{scene.session_id}.pdf"]
    assert all(p.stat().st_size > 1000 for p in written)


def test_the_routes_check_access_and_audit(store: Store) -> None:
    scene, _phone, _gaze = reviewed(store)
    other = paired_session(store, exam="physics-2", candidate="cand-9", device="unit-2")
    app = create_app(scene.services)
    app.extensions[REVIEW] = ReviewSettings(BRIDGE_KEY)
    tokens = Tokens(store)
    math, client = tokens.create("proctor", "math desk", ["math-101"]), tokens.create("client", "pc")
    web = app.test_client()

    def get(path: str, token: str | None = math) -> tuple[int, bytes, str | None]:
        response = web.get(path, headers={"Authorization": f"Bearer {token}"} if token else {})
        return response.status_code, response.data, response.mimetype

    status, body, mimetype = get(f"/api/v1/sessions/{scene.session_id}/report.html")
    assert (status, mimetype) == (200, "text/html") and b"Session report" in body
    status, body, mimetype = get(f"/api/v1/sessions/{scene.session_id}/report.pdf")
    assert (status, mimetype) == (200, "application/pdf") and body.startswith(b"%PDF-")
    assert get(f"/api/v1/sessions/{other.session_id}/report.html")[0] == 403  # another exam's session
    assert get(f"/api/v1/sessions/{other.session_id}/report.pdf")[0] == 403
    assert get(f"/api/v1/sessions/{scene.session_id}/report.html", None)[0] == 401
    assert get(f"/api/v1/sessions/{scene.session_id}/report.html", client)[0] == 403
    assert get("/api/v1/sessions/nope/report.html")[0] == 404
    assert get(f"/api/v1/sessions/{scene.session_id}/report.docx")[0] == 404
    exported = [(e["actor"], e["target"], e["detail"]["report"]) for e in audit.entries(store)
                if e["action"] == "export"]
    assert exported == [("token:math desk", scene.session_id, "html"), ("token:math desk", scene.session_id, "pdf")]
