"""Bearer-token checks for the API and pages (tokens: cloud_bridge.tokens).

The proctor page's cookie is scoped to the page's own path (``/proctor/<exam>``), so it reaches only that
page and the page's data routes under it; the API takes the ``Authorization: Bearer`` header."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, current_app, g, jsonify, request

from cloud_bridge.tokens import Grant
from cloud_bridge.web import services_of

COOKIE = "invigil_token"
F = TypeVar("F", bound=Callable[..., Any])


def presented_token() -> str:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[len("Bearer "):].strip()
    return request.cookies.get(COOKIE, "")


def require(*roles: str) -> Callable[[F], F]:
    """Let the request through only with a valid token of one of ``roles`` (401 without, 403 wrong role);
    its :class:`Grant` is ``g.grant``."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            token = presented_token()
            grant = services_of(current_app).tokens.grant(token) if token else None
            if grant is None:
                response = jsonify(error="unauthorized", detail="a valid bearer token is required")
                response.headers["WWW-Authenticate"] = 'Bearer realm="invigil"'
                return response, 401
            if grant.role not in roles:
                return jsonify(error="forbidden", detail=f"this needs a {' or '.join(roles)} token"), 403
            g.grant, g.role = grant, grant.role
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate


def grant() -> Grant:
    """The current request's grant (inside a view behind :func:`require`)."""
    return g.grant


def require_exam(exam_id: str) -> None:
    """403 unless the request's token may see ``exam_id``."""
    if not grant().sees(exam_id):
        abort(403, f"this token does not cover exam {exam_id}")
