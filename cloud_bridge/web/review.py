"""The review pages (server-rendered, a little vanilla JS): a login form, the exams a viewer may review, an exam's
sessions ranked by risk score with each score's breakdown, and a session's page: its timeline plot, its
alerts in queue order with snapshot, confidence, duration and decision buttons (keys j/k, c/d/s), and the
link to its signed export. Every snapshot shown is an audited read (``read_evidence``)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import quote

from flask import Blueprint, Response, abort, g, make_response, redirect, render_template, request, url_for
from sqlalchemy import select

from cloud_bridge import audit
from cloud_bridge.review import evidence_session, rank_exam, session_review
from cloud_bridge.review_access import visible_exams
from cloud_bridge.staff import StaffError, wait_words
from cloud_bridge.store.models import Evidence
from cloud_bridge.web import guards, services
from cloud_bridge.web.plot import clock, timeline_svg
from cloud_bridge.web.review_auth import COOKIE, check_exam, current_viewer, presented, session_exam, settings, viewer
from edge_app.protocol.commands import NAME

review = Blueprint("review", __name__, url_prefix="/review")
F = TypeVar("F", bound=Callable[..., Any])
DIGEST_CHARS = 32


def page(view: F) -> F:
    """A page: without a login, the login form (which comes back here)."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        found = current_viewer()
        if found is None:
            return redirect(url_for("review.login", next=request.full_path.rstrip("?")))
        g.viewer = found
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def _next(target: str | None) -> str:
    """Only a path of the review pages (never another site)."""
    if target and target.startswith("/review") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("review.exams")


@review.get("/login")
def login() -> Any:
    return render_template("review_login.html", next=_next(request.args.get("next")), error=None)


@review.post("/login")
def login_post() -> Any:
    from cloud_bridge.web.fleet import fleet

    target = _next(request.form.get("next"))
    try:
        token, expires_at = fleet().staff.login(request.form.get("username"), request.form.get("password"),
                                                request.remote_addr or "")
    except StaffError as exc:
        if exc.reason != "locked":
            return render_template("review_login.html", next=target, error="Wrong user name or password.")
        wait = wait_words(exc.retry_after or 1)
        error = (f"This account is locked after too many failed logins. Try again in {wait}, or ask a staff "
                 "member to unlock it.")
        return render_template("review_login.html", next=target, error=error), 429, {
            "Retry-After": str(exc.retry_after or 1)}
    response = make_response(redirect(target))
    response.set_cookie(COOKIE, token, path="/", httponly=True, samesite="Strict", expires=int(expires_at),
                        secure=request.is_secure or guards().http.secure_cookie)
    return response


@review.post("/logout")
def logout() -> Any:
    from cloud_bridge.web.fleet import fleet

    token, cookie = presented()
    if token and cookie:
        fleet().staff.logout(token)
    response = make_response(redirect(url_for("review.login")))
    response.delete_cookie(COOKIE, path="/")
    return response


@review.get("")
@page
def exams() -> Any:
    return render_template("review_exams.html", viewer=viewer(),
                           exams=visible_exams(services().store, viewer()))


@review.get("/exams/<exam_id>")
@page
def exam(exam_id: str) -> Any:
    if not NAME.fullmatch(exam_id):
        abort(404, "no such exam")
    check_exam(exam_id)
    ranked = rank_exam(services().store, exam_id, settings().weights)
    return render_template("review_exam.html", viewer=viewer(), exam_id=exam_id, ranked=ranked,
                           weights=settings().weights)


@review.get("/sessions/<session_id>")
@page
def session(session_id: str) -> Any:
    session_exam(session_id)
    found = session_review(services().store, session_id[:32], settings().weights)
    if found is None:
        abort(404, "no such session")
    return render_template("review_session.html", viewer=viewer(), review=found, t=found.timeline,
                           svg=timeline_svg(found.timeline), clock=clock, quote=quote)


@review.get("/sessions/<session_id>/evidence/<digest>")
@page
def evidence(session_id: str, digest: str) -> Any:
    """A snapshot of one of the session's alerts, each read audited."""
    session_exam(session_id)
    digest, store = digest[:DIGEST_CHARS], services().store
    if not evidence_session(store, session_id[:32], digest):
        abort(404, "no alert of this session carries this snapshot")
    with store.session() as db, db.begin():
        row = db.scalar(select(Evidence).where(Evidence.digest == digest))
        if row is None:
            abort(404, "no such snapshot (not uploaded, or purged)")
        audit.record(db, viewer().actor, "read_evidence", digest, {"session_id": session_id[:32]})
        data, mimetype = row.data, row.content_type
    return Response(data, mimetype=mimetype, headers={"Cache-Control": "private, no-store"})
