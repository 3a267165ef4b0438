"""Bearer-token checks for the API and pages (tokens: cloud_bridge.tokens)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, g, jsonify, request

from cloud_bridge.web import services_of

COOKIE = "invigil_token"
F = TypeVar("F", bound=Callable[..., Any])


def presented_token() -> str:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[len("Bearer "):].strip()
    return request.cookies.get(COOKIE, "")


def require(*roles: str) -> Callable[[F], F]:
    """Let the request through only with a valid token of one of ``roles`` (401 without, 403 wrong role)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            token = presented_token()
            role = services_of(current_app).tokens.role(token) if token else None
            if role is None:
                response = jsonify(error="unauthorized", detail="a valid bearer token is required")
                response.headers["WWW-Authenticate"] = 'Bearer realm="invigil"'
                return response, 401
            if role not in roles:
                return jsonify(error="forbidden", detail=f"this needs a {' or '.join(roles)} token"), 403
            g.role = role
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate
