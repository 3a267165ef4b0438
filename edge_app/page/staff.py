"""The staff blueprint, behind login with the unit's admin secret (:mod:`edge_app.admin_secret`).

Pairing state and a typed pairing code (handed to the running unit as ``python -m edge_app pair`` does,
:func:`edge_app.pairing.write_pair_code`), Wi-Fi and bridge requests for the privileged helper
(:mod:`edge_app.page.requests`), status: pairing, outbox queue depth, versions, last errors.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, session, url_for
from pydantic import ValidationError

from edge_app import admin_secret
from edge_app.page.app import now, page
from edge_app.page.requests import BridgeRequest, WifiRequest, pending, write_request
from edge_app.pairing import write_pair_code
from edge_app.protocol import ProtocolError

staff = Blueprint("staff", __name__, url_prefix="/staff")


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not session.get("staff"):
            if request.path.startswith("/staff/api/"):
                abort(401, "log in with the unit's admin secret")
            return redirect(url_for("staff.login", next=request.path))
        return view(*args, **kwargs)

    return wrapped


@staff.route("/login", methods=["GET", "POST"])
def login() -> Any:
    shared, data_dir = page(), page().config.data_dir
    if request.method == "GET":
        return render_template("login.html", configured=admin_secret.exists(data_dir))
    wait = shared.guard.wait(now())
    if wait > 0:
        abort(429, f"too many wrong secrets: try again in {int(wait) + 1} s")
    try:
        ok = admin_secret.verify(data_dir, request.form.get("secret", ""))
    except admin_secret.SecretError:
        abort(500, "the unit's admin secret is unreadable: reset it on the unit")
    if not ok:
        shared.guard.failed(now())
        return render_template("login.html", configured=admin_secret.exists(data_dir),
                               error="That is not this unit's admin secret."), 403
    shared.guard.succeeded()
    session.clear()  # a new session: nothing from before the login carries over
    session.permanent = True
    session["staff"] = True
    session["csrf"] = secrets.token_urlsafe(32)
    return redirect(url_for("staff.home"))


@staff.post("/logout")
def logout() -> Any:
    session.clear()
    return redirect(url_for("placement.index"))


def status() -> dict[str, Any]:
    shared = page()
    snap = shared.state.snapshot()
    found = snap["placement"]
    return {**snap["status"], "errors": snap["errors"], "updated": snap["updated"],
            "placement": None if found is None else {k: found.get(k) for k in ("usable", "guidance", "source")},
            "requests": pending(shared.config.page.requests_path(shared.config.data_dir)),
            "device_id": shared.config.device_id}


@staff.get("")
@login_required
def home() -> Any:
    return render_template("staff.html", status=status())


@staff.get("/api/status")
@login_required
def api_status() -> Any:
    return jsonify(status())


@staff.post("/pair")
@login_required
def pair() -> Any:
    try:
        code = write_pair_code(page().config.data_dir, request.form.get("code", ""))
    except ProtocolError as exc:
        flash(f"Not a pairing code: {exc}", "error")
        return redirect(url_for("staff.home")), 303
    flash(f"Pairing code {code} handed to the unit: it goes to the bridge within a second.", "ok")
    return redirect(url_for("staff.home")), 303


def _request(model: type[WifiRequest] | type[BridgeRequest], fields: dict[str, Any], what: str) -> Any:
    shared = page()
    try:
        record = write_request(shared.config.page.requests_path(shared.config.data_dir), model.model_validate(fields))
    except ValidationError as exc:
        reasons = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        flash(f"{what} not changed: {reasons}", "error")
        return redirect(url_for("staff.home")), 303
    flash(f"{what} change requested ({record['id'][:8]}): the unit applies it shortly.", "ok")
    return redirect(url_for("staff.home")), 303


@staff.post("/wifi")
@login_required
def wifi() -> Any:
    return _request(WifiRequest, {"ssid": request.form.get("ssid", ""), "psk": request.form.get("psk", "")}, "Wi-Fi")


@staff.post("/bridge")
@login_required
def bridge() -> Any:
    port = request.form.get("port", "").strip() or "8883"
    return _request(BridgeRequest, {"host": request.form.get("host", ""), "port": port}, "Bridge")
