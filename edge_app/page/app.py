"""``create_app(state, config)``: the unit's page as a Flask app with two blueprints.

* ``placement`` (anyone at the desk): the live preview with the placement drawn in, the guidance sentences,
  ``/api/placement`` (the verdict as JSON, no image);
* ``staff`` (after login with the unit's admin secret): pairing state and a typed pairing code, Wi-Fi and
  bridge requests for the privileged helper, status.

Every POST carries the session's CSRF token; the session cookie is HttpOnly and SameSite=Strict, and the
session ends after ``PERMANENT_SESSION_LIFETIME``. Pages allow only their own scripts and images (CSP).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flask import Flask, abort, current_app, request, session
from werkzeug.exceptions import HTTPException

from edge_app.config import EdgeConfig
from edge_app.page.state import PageState

MAX_FAILURES, FAILURE_WINDOW, LOCKOUT = 5, 300.0, 60.0  # failed logins in the window, then seconds locked
CSP = "default-src 'self'; img-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; " \
      "form-action 'self'; base-uri 'none'"


@dataclass
class LoginGuard:
    """Slows guessing: after MAX_FAILURES failed logins within FAILURE_WINDOW, no login for LOCKOUT seconds."""

    failures: list[float] = field(default_factory=list)
    locked_until: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self, now: float) -> float:
        with self.lock:
            return max(0.0, self.locked_until - now)

    def failed(self, now: float) -> None:
        with self.lock:
            self.failures = [t for t in self.failures if t > now - FAILURE_WINDOW] + [now]
            if len(self.failures) >= MAX_FAILURES:
                self.locked_until, self.failures = now + LOCKOUT, []

    def succeeded(self) -> None:
        with self.lock:
            self.failures = []


@dataclass
class Page:
    """What the page's routes share: the state the unit feeds, the unit's config, the open previews."""

    state: PageState
    config: EdgeConfig
    streams: threading.BoundedSemaphore
    guard: LoginGuard = field(default_factory=LoginGuard)


def page() -> Page:
    return current_app.extensions["invigil_page"]


def csrf_token() -> str:
    """The session's CSRF token (made on first use)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return str(session["csrf"])


def create_app(state: PageState, config: EdgeConfig, settings: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY=secrets.token_bytes(32),  # per process: a restart ends every staff session
                      SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
                      SESSION_COOKIE_NAME="invigil_unit", PERMANENT_SESSION_LIFETIME=timedelta(minutes=30),
                      MAX_CONTENT_LENGTH=16 * 1024, STREAM_KEEPALIVE=2.0)
    app.config.update(settings or {})
    app.extensions["invigil_page"] = Page(state, config, threading.BoundedSemaphore(config.page.streams))

    from edge_app.page.placement import placement
    from edge_app.page.staff import staff

    app.register_blueprint(placement)
    app.register_blueprint(staff)
    app.jinja_env.globals["csrf_token"] = csrf_token

    @app.before_request
    def check_csrf() -> None:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return
        sent, expected = request.form.get("csrf", ""), session.get("csrf", "")
        if not expected or not hmac.compare_digest(str(sent), str(expected)):
            abort(400, "the form is out of date: reload the page and try again")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        from flask import render_template

        if request.path.startswith("/api/"):
            return {"error": (exc.name or "error").lower().replace(" ", "_"), "detail": exc.description}, exc.code
        return render_template("error.html", error=exc), exc.code

    @app.after_request
    def headers(response: Any) -> Any:
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app


def now() -> float:
    return time.monotonic()
