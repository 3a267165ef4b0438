"""The review's JSON API: the PC client's events, an exam's ranked sessions, a session's timeline and decisions,
its signed export, and (staff) which reviewers review which exam. Pages: cloud_bridge/web/review.py."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, jsonify, request

from cloud_bridge import audit
from cloud_bridge.decisions import DecisionError, Decisions
from cloud_bridge.export import ExportError, export_session
from cloud_bridge.pc_events import PcEventError, PcEvents
from cloud_bridge.policies import Policies
from cloud_bridge.review import rank_exam, session_review
from cloud_bridge.review_access import assign, reviewers, unassign
from cloud_bridge.web import services
from cloud_bridge.web.fleet import actor, require_staff
from cloud_bridge.web.review_auth import check_exam, require_viewer, session_exam, settings, viewer
from edge_app.protocol.commands import NAME

review_api = Blueprint("review_api", __name__, url_prefix="/api/v1")
SESSION_ID = 32


def _exam(exam_id: str) -> str:
    if not NAME.fullmatch(exam_id):
        abort(404, "no such exam")
    return check_exam(exam_id)


@review_api.post("/sessions/<session_id>/pc-events")
def post_pc_events(session_id: str) -> Any:
    """The PC exam client's events, with the session's ``pc_token`` (no API token: the secret is per session)."""
    header = request.headers.get("Authorization", "")
    token = header[len("Bearer "):].strip() if header.startswith("Bearer ") else ""
    if not token or len(token) > 200:
        raise PcEventError("unauthorized", "Authorization: Bearer <pc_token> (given when the session was "
                           "created) is required", 401)
    body = request.get_json(silent=True)
    stored = PcEvents(services().store).post(session_id, token, body)
    return jsonify(stored=stored), 201


@review_api.get("/exams/<exam_id>/review")
@require_viewer
def exam_review(exam_id: str) -> Any:
    """The exam's sessions, riskiest first, each score with its breakdown."""
    exam = _exam(exam_id)
    ranked = rank_exam(services().store, exam, settings().weights)
    return jsonify(exam_id=exam, sessions=[review.summary() for review in ranked])


@review_api.get("/sessions/<session_id>/review")
@require_viewer
def session_detail(session_id: str) -> Any:
    session_exam(session_id)
    review = session_review(services().store, session_id[:SESSION_ID], settings().weights)
    if review is None:
        abort(404, f"no session {session_id[:SESSION_ID]}")
    return jsonify(review.as_dict())


def decide(session_id: str, data: object) -> dict[str, Any]:
    """Record the decision of the request's viewer (shared with the pages)."""
    if not viewer().decides:
        abort(403, "decisions are made by staff and reviewer logins, not API tokens")
    if not isinstance(data, dict) or set(data) - {"alert_id", "verdict", "note"}:
        raise DecisionError("invalid", "the body is {\"alert_id\": ... or null, \"verdict\": ..., \"note\": ...}")
    alert_id = data.get("alert_id")
    if alert_id is not None and (not isinstance(alert_id, str) or not 0 < len(alert_id) <= 32):
        raise DecisionError("invalid", "alert_id must be an alert's id, or null for the whole session")
    made = Decisions(services().store).decide(session_id[:SESSION_ID], alert_id, data.get("verdict"),
                                              data.get("note", ""), viewer().name, viewer().actor)
    return made.as_dict()


@review_api.post("/sessions/<session_id>/decisions")
@require_viewer
def post_decision(session_id: str) -> Any:
    session_exam(session_id)
    return jsonify(decide(session_id, request.get_json(silent=True))), 201


@review_api.get("/sessions/<session_id>/export")
@require_viewer
def export(session_id: str) -> Any:
    """The session's signed JSON-lines export (cloud_bridge/export.py), audited."""
    session_exam(session_id)
    key = settings().key
    if key is None:
        abort(409, "this bridge has no signing key configured for exports")
    store = services().store
    try:
        data = export_session(store, session_id[:SESSION_ID], key)
    except ExportError as exc:
        abort(409, str(exc))
    with store.session() as session, session.begin():
        audit.record(session, viewer().actor, "export", session_id[:SESSION_ID], {"bytes": len(data)})
    name = f"session-{session_id[:SESSION_ID]}.jsonl"
    return Response(data, mimetype="application/x-ndjson",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@review_api.get("/exams/<exam_id>/reviewers")
@require_staff
def list_reviewers(exam_id: str) -> Any:
    if not NAME.fullmatch(exam_id):
        abort(404, "no such exam")
    return jsonify(exam_id=exam_id, reviewers=reviewers(services().store, exam_id))


@review_api.put("/exams/<exam_id>/reviewers/<username>")
@require_staff
def assign_reviewer(exam_id: str, username: str) -> Any:
    added = assign(services().store, username, exam_id, actor())
    return jsonify(exam_id=exam_id, username=username, assigned=True, changed=added)


@review_api.delete("/exams/<exam_id>/reviewers/<username>")
@require_staff
def unassign_reviewer(exam_id: str, username: str) -> Any:
    removed = unassign(services().store, username, exam_id, actor())
    return jsonify(exam_id=exam_id, username=username, assigned=False, changed=removed)


def _policies() -> Policies:
    return Policies(services().store, settings().retention)


@review_api.get("/exams/<exam_id>/policy")
@require_viewer
def get_policy(exam_id: str) -> Any:
    """The exam's review and retention policy (the config's defaults where staff set none)."""
    return jsonify(_policies().get(_exam(exam_id)))


@review_api.put("/exams/<exam_id>/policy")
@require_staff
def set_policy(exam_id: str) -> Any:
    """Set the exam's retention days, dismissed evidence's grace hours and/or two reviewers (audited)."""
    return jsonify(_policies().set(exam_id, request.get_json(silent=True), actor()))


@review_api.post("/sessions/<session_id>/release")
@require_staff
def release_session(session_id: str) -> Any:
    """Release an ended session's evidence: retention may purge its confirmed evidence from now on (audited)."""
    if len(session_id) > SESSION_ID:
        abort(404, f"no session {session_id[:SESSION_ID]}...")
    body = request.get_json(silent=True)
    note = body.get("note") if isinstance(body, dict) and set(body) <= {"note"} else None
    return jsonify(_policies().release(session_id, note, actor())), 201
