"""The HTTP API of the PC exam client (sessions, pairing QR), the devices' evidence uploads and the gaps in
a device's events."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request, url_for
from sqlalchemy import select

from cloud_bridge.gaps import MAX_PAGE, PAGE, device_exams, device_gaps, device_known
from cloud_bridge.pc_events import issue_token
from cloud_bridge.refusal import refuse_unknown
from cloud_bridge.sessions import SessionError, SessionView
from cloud_bridge.store.models import EventRow, Evidence
from cloud_bridge.web import services
from cloud_bridge.web.auth import grant, require, require_exam
from edge_app.protocol import DEVICE_ID, b64

api = Blueprint("api", __name__, url_prefix="/api/v1")
JPEG_MAGIC = b"\xff\xd8\xff"


def session_json(view: SessionView, with_code: bool = True) -> dict[str, Any]:
    """A session as the API shows it; ``with_code`` False (a proctor) hides the pairing code, whoever holds
    it could pair a unit of theirs with the candidate's session."""
    code = view.pairing_code if with_code else None
    return {"session_id": view.session_id, "exam_id": view.exam_id, "candidate_id": view.candidate_id,
            "state": view.state, "device_id": view.device_id, "pairing_code": code,
            "qr_payload": view.qr_payload if with_code else None,
            "code_expires_at": view.code_expires_at,
            "qr_png": url_for("api.session_qr", session_id=view.session_id) if code else None,
            "created_at": view.created_at, "paired_at": view.paired_at, "ended_at": view.ended_at}


def bad_request(reason: str, detail: str, code: int = 400) -> tuple[Response, int]:
    return jsonify(error=reason, detail=detail), code


@api.post("/sessions")
@require("client")
def create_session() -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return bad_request("invalid", "the body must be a JSON object")
    refuse_unknown(body, {"exam_id", "candidate_id", "photo", "rules"})
    photo_text = body.get("photo")
    if not isinstance(photo_text, str):
        return bad_request("invalid", "photo (the enrolled photo, base64 JPEG) is required")
    try:
        photo = base64.b64decode(photo_text, validate=True)
    except (binascii.Error, ValueError):
        return bad_request("invalid", "photo is not base64")
    if len(photo) > services().limits["photo"]:
        return bad_request("too_large", f"photo over {services().limits['photo']} bytes", 413)
    rules = body.get("rules")
    if rules is not None and not isinstance(rules, dict):
        return bad_request("invalid", "rules must be an object (the device's rules section)")
    try:
        view = services().sessions.create(body.get("exam_id"), body.get("candidate_id"), photo,  # type: ignore[arg-type]
                                          json.dumps(rules) if rules else None)
    except SessionError as exc:
        return bad_request(exc.reason, str(exc))
    services().feed.notify()  # the PC client's secret for its events (cloud_bridge/pc_events.py), shown once
    return jsonify({**session_json(view), "pc_token": issue_token(services().store, view.session_id)}), 201


@api.get("/sessions/<session_id>")
@require("client", "proctor")
def get_session(session_id: str) -> Any:
    view = services().sessions.get(session_id)
    if view is None:
        abort(404, f"no session {session_id}")
    require_exam(view.exam_id)
    shown = session_json(view, with_code=grant().role == "client")
    if view.state == "paired" and view.device_id is not None:  # how the unit is aimed, for the exam PC's screen
        shown["placement"] = services().health.placement(view.device_id)
    return jsonify(shown)


@api.get("/sessions/<session_id>/qr.png")
@require("client")
def session_qr(session_id: str) -> Any:
    from cloud_bridge.qr import qr_png

    view = services().sessions.get(session_id)
    if view is None or view.qr_payload is None:
        abort(404, f"session {session_id} has no pairing code (unknown, paired or ended)")
    return Response(qr_png(view.qr_payload), mimetype="image/png")


@api.post("/sessions/<session_id>/end")
@require("client")
def end_session(session_id: str) -> Any:
    before = services().sessions.get(session_id)
    if before is not None and before.state == "paired" and before.device_id:
        services().feed.device_back(before.device_id)  # an open device_offline ends with its session
    commands = services().commands
    try:  # the unit's session_stop is written with the end (the bridge's outbox), published after
        view = services().sessions.end(session_id, also=commands.ended if commands is not None else None)
    except SessionError as exc:
        return bad_request(exc.reason, str(exc), 404)
    services().feed.notify()
    return jsonify(session_json(view))


@api.post("/evidence")
def upload_evidence() -> Any:
    """A device's snapshot: accepted only if a stored event of that device carries its digest."""
    device_id = request.headers.get("X-Invigil-Device", "")
    if not DEVICE_ID.fullmatch(device_id):
        return bad_request("invalid", "X-Invigil-Device must name the device")
    data = request.get_data(cache=False)
    if len(data) > services().limits["upload"]:
        return bad_request("too_large", f"over {services().limits['upload']} bytes", 413)
    if not data.startswith(JPEG_MAGIC):
        return bad_request("invalid", "evidence must be a JPEG image")
    digest = b64(hashlib.sha256(data).digest()[:16])
    store = services().store
    with store.session() as session, session.begin():
        if session.get(Evidence, digest) is not None:
            return jsonify(digest=digest, stored=False), 200
        known = session.scalar(select(EventRow.id).where(EventRow.evidence == digest,
                                                         EventRow.device_id == device_id).limit(1))
        if known is None:
            return bad_request("unknown_digest", "no stored event of this device carries this snapshot's digest "
                               "(yet: retry after the event is delivered)", 409)
        session.add(Evidence(digest=digest, device_id=device_id, content_type="image/jpeg", data=data,
                             uploaded_at=time.time()))
    services().feed.notify()
    return jsonify(digest=digest, stored=True), 201


@api.get("/devices/<device_id>/gaps")
@require("client", "proctor")
def list_gaps(device_id: str) -> Any:
    """The device's gaps after the cursor ``after`` (a gap id), oldest first; a proctor token must cover an exam
    the device has served in."""
    after, limit = request.args.get("after", "0"), request.args.get("limit", str(PAGE))
    if not (after.isascii() and after.isdigit() and len(after) <= 18):
        return bad_request("invalid", "after must be a gap id (digits)")
    if not (limit.isascii() and limit.isdigit() and len(limit) <= 4 and 1 <= int(limit) <= MAX_PAGE):
        return bad_request("invalid", f"limit must be 1 to {MAX_PAGE}")
    store = services().store
    if grant().role == "proctor" and not any(map(grant().sees, device_exams(store, device_id))):
        abort(403, f"this token covers no exam device {device_id} has served in")
    if not DEVICE_ID.fullmatch(device_id) or not device_known(store, device_id):
        abort(404, f"no device {device_id}")
    gaps = device_gaps(store, device_id, int(after), int(limit))
    return jsonify(gaps=gaps, cursor=gaps[-1]["id"] if gaps else int(after))
