"""Who is reviewing: a staff or reviewer login (``Authorization: Bearer`` from ``POST /api/v1/staff/login``, or
the review pages' cookie set by their login form), or a proctor API token (its exams, read-only). Every
route that shows a session checks that its exam is the viewer's (403 otherwise).

The review cookie is HttpOnly and SameSite=Strict: another site's page cannot send it. Routes that change
anything take JSON bodies only, which a cross-site form cannot send without the browser asking first."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import abort, current_app, g, jsonify, request

from cloud_bridge.review_access import Viewer, staff_viewer, token_viewer
from cloud_bridge.risk import RiskWeights
from cloud_bridge.store.models import ExamSession
from cloud_bridge.web import services

REVIEW = "invigil_review"  # app.extensions: the ReviewSettings
COOKIE = "invigil_review"
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class ReviewSettings:
    """The bridge's key (it seals exports), the risk score's weights (``[review]``) and the retention policy of
    an exam without one of its own (``[retention]``)."""

    key: Ed25519PrivateKey | None = None
    weights: RiskWeights = field(default_factory=RiskWeights)
    retention: dict[str, float] = field(default_factory=lambda: {"retention_days": 30.0,
                                                                 "dismissed_grace_hours": 24.0})


def settings() -> ReviewSettings:
    found = current_app.extensions.get(REVIEW)
    if found is None:
        found = current_app.extensions[REVIEW] = ReviewSettings()
    return found


def _staff_user(token: str) -> str | None:
    from cloud_bridge.web.fleet import fleet

    return fleet().staff.who(token)


def presented() -> tuple[str, bool]:
    """The request's token, and whether it came in the review cookie."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[len("Bearer "):].strip(), False
    return request.cookies.get(COOKIE, ""), True


def current_viewer() -> Viewer | None:
    token, _cookie = presented()
    if not token or len(token) > 200:
        return None
    user = _staff_user(token)
    if user is not None:
        return staff_viewer(services().store, user)
    grant = services().tokens.grant(token)
    if grant is not None and grant.role == "proctor":
        return token_viewer(grant.label, grant.exams)
    return None


def require_viewer(view: F) -> F:
    """Only for a staff or reviewer login, or a proctor token (401 without; 403 for a client token); the
    viewer is ``g.viewer``."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        found = current_viewer()
        if found is None:
            token, _cookie = presented()
            if token and services().tokens.grant(token) is not None:
                return jsonify(error="forbidden", detail="review needs a staff or reviewer login, or a proctor "
                               "token"), 403
            response = jsonify(error="unauthorized", detail="log in (POST /api/v1/staff/login, or /review/login)")
            response.headers["WWW-Authenticate"] = 'Bearer realm="invigil-review"'
            return response, 401
        g.viewer = found
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def viewer() -> Viewer:
    return g.viewer


def check_exam(exam_id: str) -> str:
    if not viewer().sees(exam_id):
        abort(403, f"you are not assigned to exam {exam_id}")
    return exam_id


def session_exam(session_id: str) -> str:
    """The session's exam: 404 for no such session, 403 when it is not the viewer's."""
    if len(session_id) > 32:
        abort(404, "no such session")
    with services().store.session() as session:
        row = session.get(ExamSession, session_id)
        if row is None:
            abort(404, f"no session {session_id}")
        return check_exam(row.exam_id)
