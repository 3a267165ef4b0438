"""The bridge's HTTP side: ``create_app(services)`` with the API blueprint (PC exam client, devices'
evidence uploads) and the proctor blueprint (live page per exam, server-sent events, evidence)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Flask, current_app, jsonify
from werkzeug.exceptions import HTTPException

from cloud_bridge.services import Services

OPENAPI = Path(__file__).resolve().parent / "openapi.json"


def create_app(services: Services, config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=max(services.limits.values()) + 100_000)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # Flask 3 ignores the JSON_SORT_KEYS config key
    app.config.update(config or {})
    app.extensions["invigil"] = services

    from cloud_bridge.web.api import api
    from cloud_bridge.web.proctor import proctor

    app.register_blueprint(api)
    app.register_blueprint(proctor)

    @app.get("/api/v1/openapi.json")
    def openapi() -> Any:
        return jsonify(json.loads(OPENAPI.read_text(encoding="utf-8")))

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify(ok=True)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        return jsonify(error=exc.name.lower().replace(" ", "_"), detail=exc.description), exc.code

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
