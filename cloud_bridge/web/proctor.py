"""Proctors: the live page of an exam, its server-sent events, its alerts as JSON, and evidence snapshots."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, abort, jsonify, redirect, render_template, request, url_for

from cloud_bridge.store.models import Evidence
from cloud_bridge.web import services
from cloud_bridge.web.auth import COOKIE, require
from edge_app.protocol.commands import NAME

proctor = Blueprint("proctor", __name__)
KEEPALIVE_SECONDS = 15.0  # a comment line this often keeps proxies from closing an idle stream
HEALTH_SECONDS = 2.0  # device health is re-checked this often while the page is open (sent when it changed)


def _exam(exam_id: str) -> str:
    if not NAME.fullmatch(exam_id):
        abort(404, "no such exam")
    return exam_id


@proctor.get("/proctor/<exam_id>")
def page(exam_id: str) -> Any:
    """The live page. ``?token=`` (from the link staff hand out) becomes an HttpOnly cookie, then a clean URL."""
    _exam(exam_id)
    token = request.args.get("token")
    if token is not None:
        if services().tokens.role(token) != "proctor":
            abort(401, "this link's token is not a valid proctor token")
        response = redirect(url_for("proctor.page", exam_id=exam_id))
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", secure=request.is_secure,
                            path="/")
        return response
    return _page(exam_id)


@require("proctor")
def _page(exam_id: str) -> Any:
    return render_template("proctor.html", exam_id=exam_id)


@proctor.get("/api/v1/exams/<exam_id>/alerts")
@require("proctor")
def alerts(exam_id: str) -> Any:
    after = request.args.get("after", "0")
    if not after.isdigit():
        abort(400, "after must be an alert id")
    return jsonify(alerts=services().feed.alerts(_exam(exam_id), int(after)),
                   sessions=services().health.exam_view(exam_id))


def _sse(event: str, data: Any, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@proctor.get("/api/v1/exams/<exam_id>/stream")
@require("proctor")
def stream(exam_id: str) -> Any:
    """Server-sent events: ``sessions`` (candidates and device health) and ``alert``, resumable by
    Last-Event-ID (the last alert id seen)."""
    _exam(exam_id)
    start = request.headers.get("Last-Event-ID") or request.args.get("after") or "0"
    last = int(start) if start.isdigit() else 0
    feed, health = services().feed, services().health
    # waitress: True once the connection is closed (server shutdown, or a client gone when the server reads
    # ahead); checked at every wake-up so a stream never holds its worker thread past its connection
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

    return Response(events(), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@proctor.get("/api/v1/evidence/<digest>")
@require("proctor")
def evidence(digest: str) -> Any:
    with services().store.session() as session:
        row = session.get(Evidence, digest[:32])
        if row is None:
            abort(404, "no such snapshot (not uploaded yet)")
        return Response(row.data, mimetype=row.content_type, headers={"Cache-Control": "private, max-age=86400"})
