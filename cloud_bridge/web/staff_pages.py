"""The staff's fleet page (server-rendered; the review pages' login): every unit with its health, versions,
placement and exam, a one-time enrolment code issued from a form (shown once), a unit revoked with a reason,
the accounts locked after failed logins with a button to unlock each, and the latest entries of the audit log.
Reviewer accounts and proctor tokens get 403; the JSON API of the
same actions is cloud_bridge/web/fleet.py."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for

from cloud_bridge import audit
from cloud_bridge.refusal import Refused
from cloud_bridge.staff import StaffError
from cloud_bridge.web import services
from cloud_bridge.web.review import page
from cloud_bridge.web.review_auth import viewer

staff_pages = Blueprint("staff_pages", __name__, url_prefix="/review/fleet")
AUDIT_SHOWN = 50


def _staff() -> str:
    """The logged-in staff account's actor name; 403 for anyone else (a reviewer's login, a token)."""
    who = viewer()
    if not who.staff:
        abort(403, "the fleet page is for staff accounts")
    return who.actor


def _render(issued: dict[str, Any] | None = None, error: str | None = None, status: int = 200,
            notice: str | None = None) -> Any:
    from cloud_bridge.web.fleet import fleet

    return render_template("staff_fleet.html", viewer=viewer(), units=fleet().units(), minimum=fleet().minimum(),
                           issued=issued, error=error, notice=notice, locked=fleet().staff.locked(),
                           entries=audit.latest(services().store, AUDIT_SHOWN)), status


@staff_pages.get("")
@page
def fleet_page() -> Any:
    _staff()
    return _render()


@staff_pages.post("/codes")
@page
def issue_code() -> Any:
    """A one-time enrolment code, shown on the page this once."""
    from cloud_bridge.web.fleet import fleet

    actor = _staff()
    device = (request.form.get("device_id") or "").strip() or None
    try:
        issued = fleet().enrolment.issue(actor, device, None, (request.form.get("label") or "").strip())
    except Refused as exc:
        return _render(error=f"No code: {exc}", status=exc.status)
    return _render(issued=issued)


@staff_pages.post("/<device_id>/revoke")
@page
def revoke(device_id: str) -> Any:
    from cloud_bridge.web.fleet import fleet

    actor = _staff()
    try:
        fleet().revoke(device_id[:14], actor, (request.form.get("reason") or "").strip()[:200])
    except Refused as exc:
        return _render(error=f"{device_id[:14]} not revoked: {exc}", status=exc.status)
    return redirect(url_for("staff_pages.fleet_page"), 303)


@staff_pages.post("/staff/<username>/unlock")
@page
def unlock(username: str) -> Any:
    """Clear a locked account's failed logins (audited), as ``POST /api/v1/staff/users/<name>/unlock`` does."""
    from cloud_bridge.web.fleet import fleet

    actor = _staff()
    try:
        done = fleet().staff.unlock(username[:64], actor)
    except StaffError as exc:
        return _render(error=f"Not unlocked: {exc}", status=404)  # the one refusal: no such account
    said = "unlocked" if done["was_locked"] else "was not locked"
    return _render(notice=f"{done['username']} {said} ({done['failures']} failed logins cleared).")
