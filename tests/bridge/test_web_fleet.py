"""The staff API and the units' enrolment with Flask's test client over a temporary SQLite store (flaskr style)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from flask.testing import FlaskClient

from cloud_bridge.broker_admin import BrokerAccounts
from cloud_bridge.config import HttpConfig
from cloud_bridge.enrol import BrokerAddress, Enrolment
from cloud_bridge.fleet import Fleet
from cloud_bridge.services import Services
from cloud_bridge.staff import Staff
from cloud_bridge.store import Store
from cloud_bridge.web import OPENAPI, create_app
from cloud_bridge.web.fleet import FLEET
from edge_app.protocol.keys import public_pem
from tests.bridge.parts import Clock

PASSWORD = "a long staff password"
PEM = public_pem(Ed25519PrivateKey.generate())


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    store = Store(f"sqlite:///{tmp_path / 'bridge.db'}")
    yield Services.build(store)
    store.close()


def make_app(services: Services, http: HttpConfig | None = None) -> Flask:
    app = create_app(services, {"TESTING": True}, http=http)
    store = services.store
    app.extensions[FLEET] = Fleet(store, BrokerAccounts(), Enrolment(store, BrokerAccounts(),
                                                                     BrokerAddress("mqtt.test", 8883, True)),
                                  Staff(store, log_n=10))
    app.extensions[FLEET].staff.create("ana", PASSWORD, "cli")
    return app


@pytest.fixture
def client(services: Services) -> FlaskClient:
    return make_app(services).test_client()


@pytest.fixture
def headers(client: FlaskClient, services: Services) -> dict[str, dict[str, str]]:
    token = client.post("/api/v1/staff/login", json={"username": "ana", "password": PASSWORD}).get_json()["token"]
    return {"staff": {"Authorization": f"Bearer {token}"}, "none": {},
            **{role: {"Authorization": f"Bearer {services.tokens.create(role, role, exams)}"}
               for role, exams in (("client", []), ("proctor", ["exam-1"]))}}


def login(client: FlaskClient, username: str, password: str) -> Any:
    return client.post("/api/v1/staff/login", json={"username": username, "password": password})


def enrol_body(code: str, **fields: Any) -> dict[str, Any]:
    return {"code": code, "public_key": PEM, "software_version": "1.4.2", "model_version": "m-7", **fields}


def issue(client: FlaskClient, headers: dict[str, dict[str, str]], **fields: Any) -> Any:
    return client.post("/api/v1/enrol-codes", json=fields, headers=headers["staff"])


ROUTES = [("get", "/api/v1/fleet", None), ("post", "/api/v1/enrol-codes", {}),
          ("post", "/api/v1/fleet/unit-1/revoke", {}), ("put", "/api/v1/fleet/min-version", {"version": "1.0"}),
          ("post", "/api/v1/staff/users", {"username": "ben", "password": PASSWORD}), ("get", "/api/v1/audit", None),
          ("post", "/api/v1/staff/logout", None), ("post", "/api/v1/staff/users/ana/unlock", None)]


@pytest.mark.parametrize("method, path, body", ROUTES)
@pytest.mark.parametrize("who, status", [("none", 401), ("client", 403), ("proctor", 403)])
def test_staff_routes_refuse_api_tokens_and_strangers(client: FlaskClient, headers: dict[str, dict[str, str]],
                                                      method: str, path: str, body: Any, who: str, status: int) -> None:
    response = getattr(client, method)(path, json=body, headers=headers[who])
    assert response.status_code == status
    assert response.get_json()["error"] == {401: "unauthorized", 403: "forbidden"}[status]


def test_login_refuses_a_wrong_password_and_logout_ends_the_login(client: FlaskClient,
                                                                   headers: dict[str, dict[str, str]]) -> None:
    wrong = client.post("/api/v1/staff/login", json={"username": "ana", "password": PASSWORD + "!"})
    assert (wrong.status_code, wrong.get_json()["error"]) == (401, "invalid_credentials")
    assert client.get("/api/v1/fleet", headers=headers["staff"]).status_code == 200
    assert client.post("/api/v1/staff/logout", headers=headers["staff"]).status_code == 200
    assert client.get("/api/v1/fleet", headers=headers["staff"]).status_code == 401


def test_a_locked_account_is_refused_with_429_until_staff_unlock_it(services: Services) -> None:
    app = make_app(services)
    store, clock = services.store, Clock()
    app.extensions[FLEET].staff = Staff(store, log_n=10, clock=clock, lockout_after=3, lockout_seconds=600.0)
    client = app.test_client()
    staff = {"Authorization": f"Bearer {login(client, 'ana', PASSWORD).get_json()['token']}"}
    app.extensions[FLEET].staff.create("ben", PASSWORD, "staff:ana")
    for _ in range(5):  # a name no account has: a wrong password's answer, and no lock
        assert login(client, "nobody", PASSWORD).status_code == 401
    answers = [login(client, "ben", password) for password in ("wrong 1", "wrong 2", "wrong 3", PASSWORD)]
    assert [(a.status_code, a.get_json()["error"]) for a in answers] == [
        (401, "invalid_credentials"), (401, "invalid_credentials"), (429, "locked"), (429, "locked")]
    assert answers[-1].headers["Retry-After"] == "600" and "try again in 10 minutes" in answers[-1].get_json()["detail"]
    assert "token" not in answers[-1].get_json()
    clock.advance(420.2)
    assert login(client, "ben", PASSWORD).headers["Retry-After"] == "180"
    unlocked = client.post("/api/v1/staff/users/ben/unlock", headers=staff)
    assert unlocked.status_code == 200 and unlocked.get_json() == {"username": "ben", "was_locked": True,
                                                                   "failures": 3}
    assert login(client, "ben", PASSWORD).status_code == 200
    missing = client.post("/api/v1/staff/users/nobody/unlock", headers=staff)
    assert (missing.status_code, missing.get_json()["error"]) == (404, "not_found")
    entries = client.get("/api/v1/audit?limit=500", headers=staff).get_json()["entries"]
    assert [(e["actor"], e["action"], e["target"]) for e in entries if e["action"] != "login_failed"] == [
        ("cli", "create_staff", "ana"), ("staff:ana", "login", "ana"), ("staff:ana", "create_staff", "ben"),
        ("staff:ben", "lockout", "ben"), ("staff:ana", "unlock", "ben"), ("staff:ben", "login", "ben")]
    failed = [(e["actor"], e["target"], e["detail"]["reason"]) for e in entries if e["action"] == "login_failed"]
    assert failed == [("anonymous", "nobody", "unknown_user")] * 5 + [("staff:ben", "ben", "wrong_password")] * 3 + [
        ("staff:ben", "ben", "locked")] * 2
    assert {e["detail"]["from"] for e in entries if e["action"] in ("login", "login_failed")} == {"127.0.0.1"}


def test_enrol_with_a_code_once_and_the_password_is_never_shown_again(client: FlaskClient,
                                                                       headers: dict[str, dict[str, str]]) -> None:
    issued = issue(client, headers, label="room 4", ttl=600)
    assert issued.status_code == 201
    code = issued.get_json()["code"]
    first = client.post("/api/v1/enrol", json=enrol_body(code, device_id="cam-04"))
    assert first.status_code == 201
    answer = first.get_json()
    password = answer["password"]
    assert answer["broker"] == {"host": "mqtt.test", "port": 8883, "tls": True} and len(password) >= 32
    again = client.post("/api/v1/enrol", json=enrol_body(code, device_id="cam-04"))
    assert (again.status_code, again.get_json()["error"]) == (409, "used_code")
    assert password not in again.get_data(as_text=True)
    listing = client.get("/api/v1/fleet", headers=headers["staff"])
    assert password not in listing.get_data(as_text=True)
    unit = listing.get_json()["units"][0]
    assert (unit["device_id"], unit["software_version"], unit["model_version"]) == ("cam-04", "1.4.2", "m-7")
    audit_log = client.get("/api/v1/audit", headers=headers["staff"]).get_json()["entries"]
    assert code not in json.dumps(audit_log) and password not in json.dumps(audit_log)


@pytest.mark.parametrize("body, status, reason", [
    (enrol_body("ABCD-EFGH-JKMN"), 403, "unknown_code"), (enrol_body("nope"), 400, "bad_code"),
    ([], 400, "invalid"), (enrol_body("ABCD-EFGH-JKMN", software_version=7), 400, "invalid"),
])
def test_enrol_refusals_say_why(client: FlaskClient, body: Any, status: int, reason: str) -> None:
    response = client.post("/api/v1/enrol", json=body)
    assert (response.status_code, response.get_json()["error"]) == (status, reason)
    assert response.get_json()["detail"]


def test_revoke_and_every_staff_action_is_audited(client: FlaskClient, headers: dict[str, dict[str, str]]) -> None:
    code = issue(client, headers, device_id="cam-05").get_json()["code"]
    assert client.post("/api/v1/enrol", json=enrol_body(code)).status_code == 201
    revoked = client.post("/api/v1/fleet/cam-05/revoke", json={"reason": "stolen"}, headers=headers["staff"])
    assert revoked.status_code == 200 and revoked.get_json()["device_id"] == "cam-05"
    twice = client.post("/api/v1/fleet/cam-05/revoke", headers=headers["staff"])
    assert (twice.status_code, twice.get_json()["error"]) == (409, "already_revoked")
    assert client.post("/api/v1/fleet/nobody/revoke", headers=headers["staff"]).status_code == 404
    minimum = client.put("/api/v1/fleet/min-version", json={"version": "1.5"}, headers=headers["staff"])
    assert minimum.get_json()["effective"] == "1.5"
    assert client.put("/api/v1/fleet/min-version", json={"version": "x"}, headers=headers["staff"]).status_code == 400
    created = client.post("/api/v1/staff/users", json={"username": "ben", "password": PASSWORD},
                          headers=headers["staff"])
    assert created.status_code == 201
    assert client.post("/api/v1/staff/login", json={"username": "ben", "password": PASSWORD}).status_code == 200
    listing = client.get("/api/v1/fleet", headers=headers["staff"]).get_json()
    assert listing["units"][0]["status"] == "revoked" and listing["min_software_version"]["set"] == "1.5"
    entries = client.get("/api/v1/audit", headers=headers["staff"]).get_json()["entries"]
    assert [(e["actor"], e["action"], e["target"]) for e in entries] == [
        ("cli", "create_staff", "ana"), ("staff:ana", "login", "ana"),
        ("staff:ana", "issue_code", entries[2]["target"]), (entries[3]["actor"], "enrol", "cam-05"),
        ("staff:ana", "revoke", "cam-05"), ("staff:ana", "set_min_version", "fleet"),
        ("staff:ana", "create_staff", "ben"), ("staff:ben", "login", "ben")]
    page = client.get(f"/api/v1/audit?after={entries[4]['id']}&limit=1", headers=headers["staff"]).get_json()
    assert [e["action"] for e in page["entries"]] == ["set_min_version"] and page["cursor"] == entries[5]["id"]


def test_enrol_is_rate_limited_per_address(services: Services) -> None:
    client = make_app(services, HttpConfig(rate_per_second=0.01, rate_burst=3)).test_client()  # type: ignore[call-arg]
    statuses = [client.post("/api/v1/enrol", json=enrol_body("ABCD-EFGH-JKMN")).status_code for _ in range(5)]
    assert statuses == [403, 403, 403, 429, 429]


def test_the_api_description_has_every_fleet_route() -> None:
    paths = json.loads(OPENAPI.read_text())["paths"]
    for method, path in [("post", "/api/v1/staff/login"), ("post", "/api/v1/staff/logout"),
                         ("post", "/api/v1/staff/users"), ("post", "/api/v1/enrol-codes"), ("post", "/api/v1/enrol"),
                         ("get", "/api/v1/fleet"), ("put", "/api/v1/fleet/min-version"),
                         ("post", "/api/v1/fleet/{device_id}/revoke"), ("get", "/api/v1/audit"),
                         ("post", "/api/v1/staff/users/{username}/unlock")]:
        assert method in paths.get(path, {}), f"{method.upper()} {path} is not described"
