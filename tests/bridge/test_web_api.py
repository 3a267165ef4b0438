"""The bridge's HTTP API with Flask's test client over a temporary SQLite store (flaskr style)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from flask.testing import FlaskClient

from cloud_bridge.services import Services
from cloud_bridge.store import Store
from cloud_bridge.web import OPENAPI, create_app
from edge_app.protocol import Event, device_topic, encode_event, evidence_digest, new_event_id
from edge_app.protocol.commands import PAIR_CODE_ALPHABET, encode_stats
from edge_app.protocol.keys import public_pem
from edge_app.protocol.placement import GUIDANCE

PHOTO_LIMIT, UPLOAD_LIMIT = 100_000, 300_000


def jpeg(width: int = 160, height: int = 120, seed: int = 0) -> bytes:
    image = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return data.tobytes()


PHOTO = base64.b64encode(jpeg()).decode()


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    store = Store(f"sqlite:///{tmp_path / 'bridge.db'}")
    built = Services.build(store)
    built.limits = {"upload": UPLOAD_LIMIT, "photo": PHOTO_LIMIT}
    yield built
    store.close()


@pytest.fixture
def app(services: Services) -> Flask:
    return create_app(services, {"TESTING": True})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def auth(services: Services) -> dict[str, dict[str, str]]:
    return {role: {"Authorization": f"Bearer {services.tokens.create(role, f'{role} test', exams)}"}
            for role, exams in (("client", []), ("proctor", ["exam-1"]))}


def create(client: FlaskClient, auth: dict[str, dict[str, str]], **fields: Any) -> Any:
    body = {"exam_id": "exam-1", "candidate_id": "cand-1", "photo": PHOTO, **fields}
    return client.post("/api/v1/sessions", json=body, headers=auth["client"])


def test_create_session_returns_its_pairing_code_and_a_qr_code_that_decodes(
        client: FlaskClient, auth: dict[str, dict[str, str]]) -> None:
    response = create(client, auth, rules={"phone": {"min_duration": 1}})
    assert response.status_code == 201
    body = response.get_json()
    code = body["pairing_code"]
    assert len(code) == 8 and set(code) <= set(PAIR_CODE_ALPHABET)
    assert body["qr_payload"] == f"INVIGIL:1:{code}"
    assert body["qr_png"] == f"/api/v1/sessions/{body['session_id']}/qr.png"
    assert (body["exam_id"], body["candidate_id"], body["state"], body["device_id"]) == \
        ("exam-1", "cand-1", "waiting", None)
    assert body["code_expires_at"] > body["created_at"]

    png = client.get(body["qr_png"], headers=auth["client"])
    assert png.status_code == 200 and png.mimetype == "image/png"
    image = cv2.imdecode(np.frombuffer(png.data, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image is not None
    text, _points, _ = cv2.QRCodeDetector().detectAndDecode(image)
    assert text == body["qr_payload"]


@pytest.mark.parametrize(("rules", "detail"), [
    ({"phone": {"seconds": 1}}, "phone.seconds: Extra inputs are not permitted"),
    ({"phone": {"min_score": 7}}, "phone.min_score: Input should be less than 1"),
    ({"preset": "lenient"}, "preset: Input should be 'strict', 'standard' or 'relaxed'"),
    ({"talking": False}, "talking: Input should be a valid dictionary"),
    ({"reboot": {}}, "reboot: Extra inputs are not permitted"),
    ({"speech_keyword": {"keywords": ["Cheat!"]}}, "speech_keyword.keywords: Value error, keyword 'Cheat!'"),
])
def test_rules_the_unit_would_refuse_are_refused_with_its_reason(
        client: FlaskClient, auth: dict[str, dict[str, str]], services: Services, rules: dict[str, Any],
        detail: str) -> None:
    """The unit checks a session's rules with its own RulesConfig and would refuse these where the PC client
    never hears of it: the API refuses them first, with the unit's reason."""
    response = create(client, auth, rules=rules)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"] == "invalid"
    assert response.get_json()["detail"].startswith("rules the unit would refuse: ")
    assert detail in response.get_json()["detail"]
    assert services.sessions.for_exam("exam-1") == []  # nothing stored


def test_good_rules_are_kept_as_sent(client: FlaskClient, auth: dict[str, dict[str, str]],
                                     services: Services) -> None:
    rules = {"preset": "relaxed", "phone": {"min_score": 0.3, "severity": "critical"}, "talking": {"enabled": False}}
    response = create(client, auth, rules=rules)
    assert response.status_code == 201
    assert json.loads(services.sessions.rules(response.get_json()["session_id"]) or "") == rules


@pytest.mark.parametrize(("body", "content_type", "detail"), [
    (b"exam-1,cand-1", "text/plain", "JSON object"),
    (b"{not json", "application/json", "JSON object"),
    (b'["exam-1", "cand-1"]', "application/json", "JSON object"),
    (json.dumps({"exam_id": "e", "candidate_id": "c", "photo": PHOTO, "colour": "red"}).encode(),
     "application/json", "unknown fields: colour"),
    (json.dumps({"exam_id": "e", "candidate_id": "c"}).encode(), "application/json", "photo"),
    (json.dumps({"exam_id": "e", "candidate_id": "c", "photo": "not base64!"}).encode(), "application/json",
     "not base64"),
    (json.dumps({"exam_id": "e", "candidate_id": "c", "photo": base64.b64encode(b"\x89PNG\r\n").decode()}).encode(),
     "application/json", "JPEG"),
    (json.dumps({"exam_id": "exam 1/2", "candidate_id": "c", "photo": PHOTO}).encode(), "application/json",
     "exam_id"),
    (json.dumps({"exam_id": "e", "photo": PHOTO}).encode(), "application/json", "candidate_id"),
    (json.dumps({"exam_id": "e", "candidate_id": "c", "photo": PHOTO, "rules": [1]}).encode(),
     "application/json", "rules"),
], ids=["not-json-type", "broken-json", "array", "unknown-field", "no-photo", "photo-not-base64",
        "photo-not-jpeg", "bad-exam-id", "no-candidate", "rules-not-object"])
def test_bad_session_bodies_are_refused_with_a_reason(client: FlaskClient, auth: dict[str, dict[str, str]],
                                                      body: bytes, content_type: str, detail: str) -> None:
    response = client.post("/api/v1/sessions", data=body, content_type=content_type, headers=auth["client"])
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid" and detail in response.get_json()["detail"]


def test_oversized_photos_and_bodies_get_413(client: FlaskClient, auth: dict[str, dict[str, str]]) -> None:
    big = b"\xff\xd8\xff\xe0" + bytes(PHOTO_LIMIT)  # over the photo limit, the body still under the request limit
    response = create(client, auth, photo=base64.b64encode(big).decode())
    assert response.status_code == 413 and response.get_json()["error"] == "too_large"
    huge = {"exam_id": "e", "candidate_id": "c", "photo": "A" * (UPLOAD_LIMIT + 200_000)}
    response = client.post("/api/v1/sessions", json=huge, headers=auth["client"])
    assert response.status_code == 413 and response.is_json  # Flask's own limit, answered as JSON too


CLIENT_ENDPOINTS = [("post", "/api/v1/sessions"), ("get", "/api/v1/sessions/{sid}/qr.png"),
                    ("post", "/api/v1/sessions/{sid}/end")]
PROCTOR_ENDPOINTS = [("get", "/api/v1/exams/exam-1/alerts"), ("get", "/api/v1/exams/exam-1/stream"),
                     ("get", "/api/v1/evidence/AAAAAAAAAAAAAAAAAAAAAA"), ("get", "/proctor/exam-1")]


@pytest.mark.parametrize(("method", "path"), [*CLIENT_ENDPOINTS, ("get", "/api/v1/sessions/{sid}"),
                                              *PROCTOR_ENDPOINTS])
def test_without_a_valid_token_every_endpoint_answers_401(client: FlaskClient, auth: dict[str, dict[str, str]],
                                                          method: str, path: str) -> None:
    sid = create(client, auth).get_json()["session_id"]
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic dXNlcjpwdw=="}):
        response = getattr(client, method)(path.format(sid=sid), headers=headers)
        assert response.status_code == 401, headers
        assert response.get_json()["error"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path"), CLIENT_ENDPOINTS)
def test_a_proctor_token_cannot_use_client_endpoints(client: FlaskClient, auth: dict[str, dict[str, str]],
                                                     method: str, path: str) -> None:
    sid = create(client, auth).get_json()["session_id"]
    response = getattr(client, method)(path.format(sid=sid), json={}, headers=auth["proctor"])
    assert response.status_code == 403 and response.get_json()["error"] == "forbidden"
    assert client.get(f"/api/v1/sessions/{sid}", headers=auth["client"]).get_json()["state"] == "waiting"


@pytest.mark.parametrize(("method", "path"), PROCTOR_ENDPOINTS[:3])
def test_a_client_token_cannot_use_proctor_endpoints(client: FlaskClient, auth: dict[str, dict[str, str]],
                                                     method: str, path: str) -> None:
    response = getattr(client, method)(path, headers=auth["client"])
    assert response.status_code == 403


def test_get_session_for_client_and_proctor_and_404_for_unknown(client: FlaskClient,
                                                                auth: dict[str, dict[str, str]]) -> None:
    created = create(client, auth).get_json()
    assert created.pop("pc_token")  # the PC client's secret is shown once, at creation (cloud_bridge/pc_events.py)
    response = client.get(f"/api/v1/sessions/{created['session_id']}", headers=auth["client"])
    assert response.status_code == 200 and response.get_json() == created
    shown = client.get(f"/api/v1/sessions/{created['session_id']}", headers=auth["proctor"])
    assert shown.status_code == 200  # the proctor of exam-1 sees its candidate, never the pairing code
    assert shown.get_json() == {**created, "pairing_code": None, "qr_payload": None, "qr_png": None}
    assert created["pairing_code"] not in shown.get_data(as_text=True)
    missing = client.get("/api/v1/sessions/0123456789abcdef0123456789abcdef", headers=auth["client"])
    assert missing.status_code == 404 and missing.get_json()["error"] == "not_found"


def test_paired_sessions_show_their_device_and_lose_the_code(services: Services, client: FlaskClient,
                                                             auth: dict[str, dict[str, str]]) -> None:
    created = create(client, auth).get_json()
    services.ingestor.register("unit-1", public_pem(Ed25519PrivateKey.generate()))
    services.sessions.pair("unit-1", created["pairing_code"].lower())  # typed in any case
    body = client.get(f"/api/v1/sessions/{created['session_id']}", headers=auth["client"]).get_json()
    assert (body["state"], body["device_id"], body["pairing_code"], body["qr_png"]) == ("paired", "unit-1", None, None)
    assert client.get(created["qr_png"], headers=auth["client"]).status_code == 404
    assert body["placement"] is None  # the unit has not said how it is aimed yet


def test_a_paired_session_shows_its_units_placement_for_the_exam_pc(services: Services, client: FlaskClient,
                                                                    auth: dict[str, dict[str, str]]) -> None:
    created = create(client, auth).get_json()
    services.ingestor.register("unit-1", public_pem(Ed25519PrivateKey.generate()))
    services.sessions.pair("unit-1", created["pairing_code"])
    url = f"/api/v1/sessions/{created['session_id']}"
    outcome = services.dispatcher.handle(device_topic("unit-1", "stats"), encode_stats(
        {"d": "unit-1", "session": created["session_id"], "placement": "hands,screen"}, 1_800_000_000_000))
    assert outcome == "stats"
    placement = client.get(url, headers=auth["client"]).get_json()["placement"]
    assert (placement["usable"], placement["failed"]) == (False, ["hands", "screen"])
    assert placement["guidance"] == [GUIDANCE["hands"], GUIDANCE["screen"]]
    services.dispatcher.handle(device_topic("unit-1", "stats"), encode_stats(
        {"d": "unit-1", "placement": "ok"}, 1_800_000_000_000))
    assert client.get(url, headers=auth["client"]).get_json()["placement"]["usable"] is True
    assert services.dispatcher.handle(device_topic("unit-1", "stats"), b'{"d":"unit-1","placement":"sideways",'
                                      b'"id":"x","t":1,"v":1}').startswith("dead_letter")


def test_ending_a_session_is_idempotent(client: FlaskClient, auth: dict[str, dict[str, str]]) -> None:
    sid = create(client, auth).get_json()["session_id"]
    first = client.post(f"/api/v1/sessions/{sid}/end", headers=auth["client"])
    assert first.status_code == 200
    ended = first.get_json()
    assert ended["state"] == "ended" and ended["ended_at"] is not None and ended["pairing_code"] is None
    again = client.post(f"/api/v1/sessions/{sid}/end", headers=auth["client"])
    assert again.status_code == 200 and again.get_json() == ended
    assert client.get(f"/api/v1/sessions/{sid}/qr.png", headers=auth["client"]).status_code == 404
    missing = client.post("/api/v1/sessions/0123456789abcdef0123456789abcdef/end", headers=auth["client"])
    assert missing.status_code == 404


def stored_event(services: Services, device: str, key: Ed25519PrivateKey, snapshot: bytes) -> None:
    """A real signed start event of ``device`` carrying the snapshot's digest, stored by the dispatcher (a
    proctor alert too if the device is paired)."""
    event = Event(event_id=new_event_id(), device_id=device, seq=1, time_ms=1_700_000_000_000, kind="phone",
                  phase="start", severity="critical", confidence=0.9, prev_hash="",
                  evidence=evidence_digest(hashlib.sha256(snapshot).hexdigest()))
    assert services.dispatcher.handle(device_topic(device, "event"), encode_event(event, key)) == "stored"


def paired(services: Services, client: FlaskClient, auth: dict[str, dict[str, str]], device: str,
           exam: str = "exam-1") -> Ed25519PrivateKey:
    """A registered unit paired with a new session of ``exam``; its key."""
    key = Ed25519PrivateKey.generate()
    services.ingestor.register(device, public_pem(key))
    code = create(client, auth, exam_id=exam).get_json()["pairing_code"]
    services.sessions.pair(device, code)
    return key


def test_evidence_upload_rules(services: Services, client: FlaskClient, auth: dict[str, dict[str, str]]) -> None:
    key, other = paired(services, client, auth, "unit-1"), Ed25519PrivateKey.generate()
    services.ingestor.register("unit-2", public_pem(other))
    snapshot = jpeg(320, 240, seed=1)
    stored_event(services, "unit-1", key, snapshot)

    def post(data: bytes, device: str | None = "unit-1") -> Any:
        headers = {"X-Invigil-Device": device} if device is not None else {}
        return client.post("/api/v1/evidence", data=data, content_type="image/jpeg", headers=headers)

    unknown = post(jpeg(320, 240, seed=2))
    assert unknown.status_code == 409 and unknown.get_json()["error"] == "unknown_digest"
    assert post(b"GIF89a" + bytes(100)).status_code == 400
    assert post(snapshot, device=None).status_code == 400
    assert post(snapshot, device="Not A Device").status_code == 400
    assert post(b"\xff\xd8\xff" + bytes(UPLOAD_LIMIT)).status_code == 413
    wrong = post(snapshot, device="unit-2")  # the bytes are right, but no event of unit-2 carries them
    assert wrong.status_code == 409 and wrong.get_json()["error"] == "unknown_digest"

    digest = evidence_digest(hashlib.sha256(snapshot).hexdigest())
    assert client.get(f"/api/v1/evidence/{digest}", headers=auth["proctor"]).status_code == 404  # not yet
    first = post(snapshot)
    assert first.status_code == 201 and first.get_json() == {"digest": digest, "stored": True}
    again = post(snapshot)  # a resend after a lost answer
    assert again.status_code == 200 and again.get_json() == {"digest": digest, "stored": False}
    shown = client.get(f"/api/v1/evidence/{digest}", headers=auth["proctor"])
    assert shown.status_code == 200 and shown.mimetype == "image/jpeg" and shown.data == snapshot


def openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[a-z_]+:)?([a-z_]+)>", r"{\1}", rule)


def test_the_openapi_description_covers_every_route(app: Flask, client: FlaskClient) -> None:
    on_disk = json.loads(OPENAPI.read_text(encoding="utf-8"))
    served = client.get("/api/v1/openapi.json")
    assert served.status_code == 200 and served.get_json() == on_disk
    assert re.fullmatch(r"3\.1\.\d+", on_disk["openapi"])
    schemes = on_disk["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    rules = [rule for rule in app.url_map.iter_rules()]
    assert {openapi_path(r.rule) for r in rules if r.rule.startswith(("/api/v1", "/proctor"))} >= {
        "/api/v1/sessions", "/api/v1/evidence", "/proctor/{exam_id}", "/api/v1/exams/{exam_id}/stream"}
    for rule in rules:
        path = openapi_path(rule.rule)
        assert path in on_disk["paths"], f"{rule.rule} is not described"
        methods = {m.lower() for m in rule.methods or ()} - {"head", "options"}
        operations = on_disk["paths"][path]
        assert methods <= set(operations), f"{rule.rule}: {methods - set(operations)} not described"
        for method in methods:
            operation = operations[method]
            assert operation["responses"], f"{method} {path} has no responses"
            for requirement in operation.get("security", on_disk["security"]):
                assert set(requirement) <= set(schemes)
            names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert names == set(rule.arguments), f"{method} {path}: path parameters {names}"

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for name, value in node.items():
                if name == "$ref":
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in refs(on_disk):
        target: Any = on_disk
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]  # a KeyError names a reference to nothing
        assert isinstance(target, dict)


def test_gaps_are_listed_for_staff_and_the_proctors_of_the_units_exams(
        services: Services, client: FlaskClient, auth: dict[str, dict[str, str]]) -> None:
    from tests.bridge.parts import Clock
    from tests.bridge.test_gaps import with_gaps

    with_gaps(services.store, Clock())
    url = "/api/v1/devices/unit-1/gaps"
    other_proctor = {"Authorization": f"Bearer {services.tokens.create('proctor', 'other', ['exam-2'])}"}
    assert client.get(url, headers=auth["proctor"]).status_code == 403  # unit-1 has served no exam of its
    services.sessions.pair("unit-1", create(client, auth).get_json()["pairing_code"])  # now it serves exam-1
    listed = client.get(url, headers=auth["proctor"])
    assert listed.status_code == 200, listed.get_json()
    gaps = listed.get_json()["gaps"]
    assert [(g["reason"], g["first_seq"], g["last_seq"], g["count"], g["lost"]) for g in gaps] == [
        ("missing", 3, 4, 2, 1), ("missing", 7, 7, 1, 0), ("disk_full", None, None, 268, 268)]
    assert gaps[1]["filled_at"] is not None and gaps[0]["filled_at"] is None and gaps[2]["first_at"] == 1_795_438_300
    assert listed.get_json()["cursor"] == gaps[-1]["id"]
    assert client.get(url, headers=auth["client"]).get_json() == listed.get_json()
    page = client.get(f"{url}?after={gaps[0]['id']}&limit=1", headers=auth["client"]).get_json()
    assert page == {"gaps": [gaps[1]], "cursor": gaps[1]["id"]}
    assert client.get(f"{url}?after={gaps[-1]['id']}", headers=auth["client"]).get_json() == {
        "gaps": [], "cursor": gaps[-1]["id"]}
    assert client.get(url, headers=other_proctor).status_code == 403
    assert client.get(url).status_code == 401
    assert client.get("/api/v1/devices/unit-9/gaps", headers=auth["client"]).status_code == 404
    for query, detail in (("after=²", "after must be a gap id"), ("after=-1", "after must be a gap id"),
                          ("limit=0", "limit must be 1 to 500"), ("limit=501", "limit must be 1 to 500")):
        refused = client.get(f"{url}?{query}", headers=auth["client"])
        assert refused.status_code == 400 and detail in refused.get_json()["detail"], query
