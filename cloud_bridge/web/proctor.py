"""Proctors: the live page of an exam and its data, the exam's alerts (a poll with a cursor, or server-sent
events for API clients) and evidence snapshots; a proctor token sees only the exams it names.

The live page polls ``/proctor/<exam>/alerts?after=<cursor>&wait=<s>&seen=<tag>``: the answer comes at once
when there is news (alerts after the cursor, or candidates whose view differs from ``seen``), else after up
to ``wait`` seconds; when ``http.max_waiting`` requests are waiting already it comes at once. So an open page
holds a server thread only while it waits, and never the last ones."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, abort, jsonify, make_response, render_template, request, url_for
from sqlalchemy import select

from cloud_bridge import audit
from cloud_bridge.store.models import Evidence, ProctorAlert
from cloud_bridge.web import guards, services
from cloud_bridge.web.auth import COOKIE, grant, require, require_exam
from edge_app.protocol.commands import NAME

proctor = Blueprint("proctor", __name__)
KEEPALIVE_SECONDS = 15.0  # a comment line this often keeps proxies from closing an idle stream
HEALTH_SECONDS = 2.0  # device health is re-checked this often while a request waits (sent when it changed)
MAX_WAIT = 60.0  # the longest any poll waits
STREAM_BUSY_RETRY = 10  # seconds an event stream refused for want of a slot is told to wait
CURSOR = re.compile(r"[0-9]{1,18}")  # ASCII digits only ("²".isdigit() is true)


def _exam(exam_id: str) -> str:
    """The exam of the path: 404 for a name no exam can have, 403 if the token does not cover it."""
    if not NAME.fullmatch(exam_id):
        abort(404, "no such exam")
    require_exam(exam_id)
    return exam_id


def _cursor(text: str, what: str) -> int:
    if not CURSOR.fullmatch(text):
        abort(400, f"{what} must be an alert id (digits)")
    return int(text)


def page_path(exam_id: str) -> str:
    """The live page's path: its cookie is sent to this path and the page's data routes under it only."""
    return url_for("proctor.page", exam_id=exam_id)


@proctor.get("/proctor/<exam_id>")
def page(exam_id: str) -> Any:
    """The live page. ``?token=`` (the link staff hand out) becomes a cookie for this page only; the page's
    script then drops the token from the address bar and the history."""
    token = request.args.get("token")
    if token is None:
        return _page(exam_id)
    if not NAME.fullmatch(exam_id):
        abort(404, "no such exam")
    found = services().tokens.grant(token)
    if found is None or found.role != "proctor":
        abort(401, "this link's token is not a valid proctor token")
    if not found.sees(exam_id):
        abort(403, f"this link's token does not cover exam {exam_id}")
    response = make_response(_render(exam_id))
    response.set_cookie(COOKIE, token, path=page_path(exam_id), httponly=True, samesite="Strict",
                        secure=request.is_secure or guards().http.secure_cookie)
    return response


@require("proctor")
def _page(exam_id: str) -> Any:
    return _render(_exam(exam_id))


def _render(exam_id: str) -> str:
    return render_template("proctor.html", exam_id=exam_id, poll_wait=guards().http.poll_wait)


def view_tag(view: list[dict[str, Any]]) -> str:
    """A short digest of the candidates' view: the page sends back the one it shows (``seen``)."""
    return hashlib.sha256(json.dumps(view, sort_keys=True).encode()).hexdigest()[:16]


def _news(exam_id: str, after: int, seen: str | None, wait: float) -> dict[str, Any]:
    feed, health = services().feed, services().health
    version = feed.version  # read before looking: a change after this ends the wait
    alerts, view = feed.alerts(exam_id, after), health.exam_view(exam_id)
    tag = view_tag(view)
    seen = tag if seen is None else seen
    waiting, waited = guards().waiting, False
    if not alerts and tag == seen and wait > 0 and waiting.enter():
        waited = True
        try:
            # waitress: True once the connection is closed (server shutdown, or a client gone)
            gone = request.environ.get("waitress.client_disconnected", lambda: False)
            deadline = time.monotonic() + wait
            while not gone() and (left := deadline - time.monotonic()) > 0:
                version = feed.wait(version, min(left, HEALTH_SECONDS))
                alerts, view = feed.alerts(exam_id, after), health.exam_view(exam_id)
                tag = view_tag(view)
                if alerts or tag != seen:
                    break
        finally:
            waiting.leave()
    return {"alerts": alerts, "sessions": view, "cursor": alerts[-1]["id"] if alerts else after,
            "sessions_tag": tag, "waited": waited}


def _alerts(exam_id: str) -> Any:
    _exam(exam_id)
    after = _cursor(request.args.get("after", "0"), "after")
    wait_text = request.args.get("wait", "0")
    try:
        wait = float(wait_text)
    except ValueError:
        abort(400, "wait must be a number of seconds")
    if not 0 <= wait <= MAX_WAIT:
        abort(400, f"wait must be 0 to {MAX_WAIT:g} seconds")
    return jsonify(_news(exam_id, after, request.args.get("seen"), wait))


@proctor.get("/api/v1/exams/<exam_id>/alerts")
@require("proctor")
def alerts(exam_id: str) -> Any:
    return _alerts(exam_id)


@proctor.get("/proctor/<exam_id>/alerts")
@require("proctor")
def page_alerts(exam_id: str) -> Any:
    """The live page's poll (the same as the API's, under the page's path where its cookie goes)."""
    return _alerts(exam_id)


def _sse(event: str, data: Any, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@proctor.get("/api/v1/exams/<exam_id>/stream")
@require("proctor")
def stream(exam_id: str) -> Any:
    """Server-sent events: ``sessions`` (candidates and device health) and ``alert``, resumable by
    Last-Event-ID (the last alert id seen). Each open stream holds a server thread: at most
    ``http.max_waiting`` streams and polls wait at once; past that, 503 with Retry-After."""
    _exam(exam_id)
    header = request.headers.get("Last-Event-ID")
    last = _cursor(header, "Last-Event-ID") if header else _cursor(request.args.get("after", "0"), "after")
    feed, health, waiting = services().feed, services().health, guards().waiting
    if not waiting.enter():
        response = jsonify(error="busy", detail="too many requests are waiting for news: poll "
                           f"/api/v1/exams/{exam_id}/alerts instead, or try again later")
        response.headers["Retry-After"] = str(STREAM_BUSY_RETRY)
        return response, 503
    gone = request.environ.get("waitress.client_disconnected", lambda: False)

    def events() -> Iterator[str]:
        nonlocal last
        seen, view = -1, None
        idle = 0.0
        while not gone():
            version = feed.version
            current = health.exam_view(exam_id)
            if current != view or seen == -1:
                view = current
                yield _sse("sessions", current)
            for alert in feed.alerts(exam_id, last):
                last = alert["id"]
                yield _sse("alert", alert, last)
            seen = version
            if feed.wait(seen, HEALTH_SECONDS) == seen:
                idle += HEALTH_SECONDS
                if idle >= KEEPALIVE_SECONDS:
                    idle = 0.0
                    yield ": keepalive\n\n"
            else:
                idle = 0.0

    response = Response(events(), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    response.call_on_close(waiting.leave)  # the server closes the response however the stream ends
    return response


def _snapshot(digest: str, exams: frozenset[str]) -> Any:
    """A snapshot, to a token that sees an exam with an alert carrying it (403 otherwise, uploaded or not)."""
    digest = digest[:32]
    with services().store.session() as session, session.begin():
        shown = session.scalar(select(ProctorAlert.exam_id).where(ProctorAlert.evidence == digest,
                                                                  ProctorAlert.exam_id.in_(sorted(exams))).limit(1))
        if shown is None:
            abort(403, "no alert of an exam this token covers carries this snapshot")
        row = session.get(Evidence, digest)
        if row is None:
            abort(404, "no such snapshot (not uploaded yet)")
        audit.record(session, f"token:{grant().label}", "read_evidence", digest, {"exam_id": shown})  # every read
        return Response(row.data, mimetype=row.content_type, headers={"Cache-Control": "private, max-age=86400"})


@proctor.get("/api/v1/evidence/<digest>")
@require("proctor")
def evidence(digest: str) -> Any:
    return _snapshot(digest, grant().exams)


@proctor.get("/proctor/<exam_id>/evidence/<digest>")
@require("proctor")
def page_evidence(exam_id: str, digest: str) -> Any:
    """A snapshot of this exam, for the live page (under the page's path where its cookie goes)."""
    return _snapshot(digest, frozenset({_exam(exam_id)}))
