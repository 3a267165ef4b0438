"""The bridge's HTTP side: ``create_app(services)`` with the API blueprint (PC exam client, devices'
evidence uploads) and the proctor blueprint (live page per exam, server-sent events, evidence)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, abort, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from cloud_bridge.config import HttpConfig
from cloud_bridge.refusal import Refused
from cloud_bridge.services import Services
from cloud_bridge.tokens import token_hash
from cloud_bridge.web.limits import RateLimiter, Waiting, body_limits, largest_body, retry_after
from edge_app.protocol import DEVICE_ID

OPENAPI = Path(__file__).resolve().parent / "openapi.json"
UNLIMITED = frozenset({"static", "healthz"})  # never rate-limited: monitoring and the page's own files


@dataclass
class Guards:
    """The HTTP side's limits, built from the ``[http]`` config."""

    http: HttpConfig
    bodies: dict[str, int]
    rates: RateLimiter
    waiting: Waiting


def _caller() -> str:
    """Whose bucket a request spends: its token, else a unit's upload, else its address."""
    from cloud_bridge.web.auth import presented_token

    token = presented_token()
    if token:
        return "token:" + token_hash(token)[:32]
    device = request.headers.get("X-Invigil-Device", "")
    if request.endpoint == "api.upload_evidence" and DEVICE_ID.fullmatch(device):
        return "device:" + device
    return "address:" + (request.remote_addr or "")


def create_app(services: Services, config: dict[str, Any] | None = None, http: HttpConfig | None = None) -> Flask:
    http = http or HttpConfig()  # type: ignore[call-arg]
    app = Flask(__name__)
    bodies = body_limits(services.limits["upload"], services.limits["photo"])
    app.config.update(MAX_CONTENT_LENGTH=bodies["*"])
    app.json.sort_keys = False  # type: ignore[attr-defined]  # Flask 3 ignores the JSON_SORT_KEYS config key
    app.config.update(config or {})
    app.extensions["invigil"] = services
    app.extensions["invigil_guards"] = Guards(http, bodies, RateLimiter(http.rate_per_second, http.rate_burst),
                                              Waiting(http.waiting_slots))

    from cloud_bridge.web.api import api
    from cloud_bridge.web.fleet import fleet_api
    from cloud_bridge.web.proctor import proctor
    from cloud_bridge.web.report_api import report_api
    from cloud_bridge.web.review import review
    from cloud_bridge.web.review_api import review_api
    from cloud_bridge.web.staff_pages import staff_pages

    app.register_blueprint(api)
    app.register_blueprint(fleet_api)
    app.register_blueprint(proctor)
    app.register_blueprint(report_api)
    app.register_blueprint(review)
    app.register_blueprint(review_api)
    app.register_blueprint(staff_pages)

    @app.get("/api/v1/openapi.json")
    def openapi() -> Any:
        return jsonify(json.loads(OPENAPI.read_text(encoding="utf-8")))

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify(ok=True)

    @app.before_request
    def guard() -> Any:
        if request.endpoint in UNLIMITED:
            return None
        guards = guards_of(app)
        wait = guards.rates.take(_caller())
        if wait > 0:
            response = jsonify(error="rate_limited", detail=f"too many requests: try again in {wait:.1f} s")
            response.headers["Retry-After"] = retry_after(wait)
            return response, 429
        # waitress refused anything over the largest route's limit unread; this route's own limit is less
        limit = guards.bodies.get(request.endpoint or "", guards.bodies["*"])
        request.max_content_length = limit  # Flask reads no more than this
        if (request.content_length or 0) > limit:  # nor does a route that reads no body say yes to one
            abort(413, f"the body is over this route's {limit} bytes")
        return None

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        return jsonify(error=exc.name.lower().replace(" ", "_"), detail=exc.description), exc.code

    @app.errorhandler(Refused)
    def refused(exc: Refused) -> Any:  # any blueprint's refusal: its reason, its sentence, its status
        response = jsonify(error=exc.reason, detail=str(exc))
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="invigil"'
        return response, exc.status

    @app.after_request
    def headers(response: Any) -> Any:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app


def services_of(app: Flask) -> Services:
    return app.extensions["invigil"]


def services() -> Services:
    """The parts of the app serving the current request."""
    return services_of(current_app)


def guards_of(app: Flask) -> Guards:
    return app.extensions["invigil_guards"]


def guards() -> Guards:
    return guards_of(current_app)


def http_server(app: Flask) -> Any:
    """A waitress server for ``app`` with the ``[http]`` config it was created with (``run()`` serves it): a
    body over the largest route's limit is refused (413) from its headers, or as soon as a chunked body
    passes it, before it reaches a temporary file."""
    from waitress.server import create_server

    http = guards_of(app).http
    proxy: dict[str, Any] = {}
    if http.trusted_proxy is not None:
        proxy = {"trusted_proxy": http.trusted_proxy, "trusted_proxy_count": 1, "clear_untrusted_proxy_headers": True,
                 "trusted_proxy_headers": {"x-forwarded-proto", "x-forwarded-for"}}
    # lookahead 1: waitress notices a closed client while its request waits for news
    return create_server(app, host=http.host, port=http.port, threads=http.threads, channel_timeout=120,
                         channel_request_lookahead=1, max_request_body_size=largest_body(guards_of(app).bodies) + 1,
                         ident="invigil-bridge", **proxy)


def stop_server(server: Any, app: Flask | None = None, timeout: float = 5.0) -> None:
    """Stop a running waitress server (``waitress.server.create_server``) so that its ``run()`` returns.

    ``server.close()`` alone closes only the listening socket: ``run()`` goes on while any connection is
    open (a proctor page's event stream, a keep-alive client). This closes every connection from the
    server's own loop thread, wakes the event streams of ``app`` (the app it serves) so their worker
    threads end at once, and waits up to ``timeout`` seconds for the worker threads.
    """
    from waitress import wasyncore

    def close_all() -> None:
        wasyncore.close_all(server._map)
        if app is not None:
            services_of(app).feed.notify()

    try:
        server.trigger.pull_trigger(close_all)  # runs in the loop thread: no race with its poll()
    except OSError:  # the loop has ended already (its trigger is closed)
        close_all()
    server.task_dispatcher.shutdown(timeout=timeout)
