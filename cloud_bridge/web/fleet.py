"""The staff API: login (locked after too many failures), staff accounts and their unlocking, enrolment codes,
the fleet, revocation, the minimum software version and the audit log; and the units' enrolment with a code
(no token: the code is the credential).

Staff routes take a staff login's bearer token (``POST /api/v1/staff/login``); an API token (client, proctor)
gets 403 there. The fleet services live in ``app.extensions[FLEET]`` (cloud_bridge.fleet.build for the running
bridge); an app created without them gets services over its own store that keep no accounts file and tell no
broker."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, current_app, g, jsonify, request

from cloud_bridge import audit
from cloud_bridge.broker_admin import BrokerAccounts
from cloud_bridge.enrol import BrokerAddress, EnrolError, Enrolment
from cloud_bridge.fleet import Fleet
from cloud_bridge.refusal import refuse_unknown
from cloud_bridge.staff import Staff, StaffError
from cloud_bridge.web import services
from cloud_bridge.web.api import bad_request
from cloud_bridge.web.auth import presented_token
from edge_app.protocol import DEVICE_ID

fleet_api = Blueprint("fleet", __name__, url_prefix="/api/v1")
FLEET = "invigil_fleet"
F = TypeVar("F", bound=Callable[..., Any])


def fleet() -> Fleet:
    """The app's fleet services (made over its store on first use when the app was created without them)."""
    built = current_app.extensions.get(FLEET)
    if built is None:
        store = services().store
        built = Fleet(store, BrokerAccounts(), Enrolment(store, BrokerAccounts(), BrokerAddress("127.0.0.1", 1883,
                                                                                                  False)),
                      Staff(store))
        current_app.extensions[FLEET] = built
    return built


def require_staff(view: F) -> F:
    """Only with a live login of a ``staff`` account (401 without one, 403 for an API token or a reviewer's
    login); the user is ``g.staff``."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        token = presented_token()
        user = fleet().staff.who(token)
        if user is None:
            if token and services().tokens.grant(token) is not None:
                return bad_request("forbidden", "this needs a staff login, not an API token", 403)
            response = jsonify(error="unauthorized", detail="a staff login's bearer token is required")
            response.headers["WWW-Authenticate"] = 'Bearer realm="invigil-staff"'
            return response, 401
        if fleet().staff.role(user) != "staff":
            return bad_request("forbidden", "this needs a staff account; a reviewer's login reviews only", 403)
        g.staff = user
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def actor() -> str:
    return f"staff:{g.staff}"


def body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise EnrolError("invalid", "the body must be a JSON object")
    return data


@fleet_api.errorhandler(StaffError)
def staff_refused(exc: StaffError) -> Any:
    status = {"invalid_credentials": 401, "exists": 409, "locked": 429, "not_found": 404}.get(exc.reason, 400)
    response, status = bad_request(exc.reason, str(exc), status)
    if exc.retry_after is not None:
        response.headers["Retry-After"] = str(exc.retry_after)
    return response, status


@fleet_api.post("/staff/login")
def staff_login() -> Any:
    """A staff login; 429 ``locked`` (Retry-After: the seconds left) while the account is locked."""
    data = body()
    token, expires_at = fleet().staff.login(data.get("username"), data.get("password"), request.remote_addr or "")
    return jsonify(token=token, expires_at=expires_at)


@fleet_api.post("/staff/logout")
@require_staff
def staff_logout() -> Any:
    fleet().staff.logout(presented_token())
    return jsonify(ok=True)


@fleet_api.post("/staff/users")
@require_staff
def create_staff() -> Any:
    data = body()
    refuse_unknown(data, {"username", "password", "role"})
    name = fleet().staff.create(data.get("username"), data.get("password"), actor(), data.get("role", "staff"))
    return jsonify(username=name), 201


@fleet_api.post("/staff/users/<username>/unlock")
@require_staff
def unlock_staff(username: str) -> Any:
    """Clear the account's failed logins and lock (audited); 404 for a name no account has."""
    return jsonify(fleet().staff.unlock(username, actor()))


@fleet_api.post("/enrol-codes")
@require_staff
def issue_code() -> Any:
    data = body()
    refuse_unknown(data, {"device_id", "ttl", "label"})
    issued = fleet().enrolment.issue(actor(), data.get("device_id"), data.get("ttl"), data.get("label", ""))
    return jsonify(issued), 201


@fleet_api.post("/enrol")
def enrol() -> Any:
    """A new unit's enrolment: the code is the credential (rate-limited per address like every caller)."""
    return jsonify(fleet().enrolment.enrol(body())), 201


@fleet_api.get("/fleet")
@require_staff
def list_fleet() -> Any:
    return jsonify(units=fleet().units(), min_software_version=fleet().minimum())


@fleet_api.put("/fleet/min-version")
@require_staff
def set_min_version() -> Any:
    data = body()
    if set(data) != {"version"}:
        return bad_request("invalid", "the body is {\"version\": \"1.4.2\"} (or null to clear it)")
    return jsonify(fleet().set_minimum(data["version"], actor()))


@fleet_api.post("/fleet/<device_id>/revoke")
@require_staff
def revoke(device_id: str) -> Any:
    data = request.get_json(silent=True) if request.content_length else {}
    if not isinstance(data, dict) or set(data) - {"reason"}:
        return bad_request("invalid", "the body, if any, is {\"reason\": \"...\"}")
    reason = data.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 500:
        return bad_request("invalid", "reason must be text of up to 500 characters")
    if not DEVICE_ID.fullmatch(device_id):
        return bad_request("not_found", f"no device {device_id}", 404)
    return jsonify(fleet().revoke(device_id, actor(), reason))


@fleet_api.get("/audit")
@require_staff
def audit_log() -> Any:
    after, limit = request.args.get("after", "0"), request.args.get("limit", "100")
    if not (after.isascii() and after.isdigit() and len(after) <= 18):
        return bad_request("invalid", "after must be an entry id (digits)")
    if not (limit.isascii() and limit.isdigit() and len(limit) <= 4 and 1 <= int(limit) <= audit.MAX_PAGE):
        return bad_request("invalid", f"limit must be 1 to {audit.MAX_PAGE}")
    entries = audit.entries(fleet().store, int(after), int(limit))
    return jsonify(entries=entries, cursor=entries[-1]["id"] if entries else int(after))
