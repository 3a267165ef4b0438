"""Proctor routes with Flask's test client over a SQLite store: tokens scoped to exams, no pairing code to
proctors, the page's cookie (its path, Secure, HttpOnly, SameSite) and the live page's poll with a cursor."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cloud_bridge.config import HttpConfig
from cloud_bridge.services import Services
from cloud_bridge.store import Store
from cloud_bridge.store.models import Evidence
from cloud_bridge.web import create_app
from edge_app.protocol import Event, new_event_id
from tests.bridge.parts import PHOTO, register

EXAMS = ("exam-1", "exam-2")


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    store = Store(f"sqlite:///{tmp_path / 'bridge.db'}")
    yield Services.build(store)
    store.close()


def app_of(services: Services, **http: Any) -> Flask:
    return create_app(services, {"TESTING": True}, HttpConfig(**http))


@pytest.fixture
def client(services: Services) -> FlaskClient:
    return app_of(services).test_client()


@pytest.fixture
def proctor(services: Services) -> dict[str, str]:
    """A proctor of exam-1 only."""
    return {"Authorization": f"Bearer {services.tokens.create('proctor', 'desk 1', ['exam-1'])}"}


@pytest.fixture
def exams(services: Services) -> dict[str, dict[str, Any]]:
    """Per exam: a paired session and one alert carrying an uploaded snapshot (its digest)."""
    out = {}
    for number, exam in enumerate(EXAMS, 1):
        device = f"unit-{number}"
        register(services.store, device)
        waiting = services.sessions.create(exam, f"cand-{number}", PHOTO)
        view = services.sessions.pair(device, waiting.pairing_code or "")
        digest = f"{exam.upper().replace('-', '')}{'A' * 16}"[:22]
        alert = alert_on(services, device, digest)
        with services.store.session() as session, session.begin():
            session.add(Evidence(digest=digest, device_id=device, content_type="image/jpeg",
                                 data=b"\xff\xd8\xff" + exam.encode(), uploaded_at=1.0))
        out[exam] = {"session": view.session_id, "digest": digest, "alert": alert}
    return out


def alert_on(services: Services, device: str, evidence: str | None = None) -> int:
    event = Event(event_id=new_event_id(), device_id=device, seq=1, time_ms=1_800_000_000_000, kind="phone",
                  phase="start", severity="critical", confidence=0.9, prev_hash="", evidence=evidence)
    message = services.feed.on_event(event, None)
    assert message is not None
    return int(message["id"])


@pytest.mark.parametrize("path", [
    "/api/v1/exams/{exam}/alerts", "/api/v1/exams/{exam}/stream", "/proctor/{exam}", "/proctor/{exam}/alerts",
    "/api/v1/evidence/{digest}", "/proctor/exam-1/evidence/{digest}", "/proctor/{exam}/evidence/{digest}",
    "/api/v1/sessions/{session}",
])
def test_a_proctor_of_one_exam_gets_403_on_another_exam(client: FlaskClient, proctor: dict[str, str],
                                                         exams: dict[str, dict[str, Any]], path: str) -> None:
    def url(exam: str) -> str:
        return path.format(exam=exam, digest=exams[exam]["digest"], session=exams[exam]["session"])

    other = client.get(url("exam-2"), headers=proctor)
    assert other.status_code == 403 and other.get_json()["error"] == "forbidden"
    assert b"cand-2" not in other.data and b"exam-2\xff" not in other.data  # nothing of exam-2's data
    if "stream" in path:
        return  # an open stream never ends by itself (the served tests read one)
    own = client.get(url("exam-1"), headers=proctor)
    assert own.status_code == 200


def test_the_proctor_sees_its_own_exam_s_alerts_and_snapshots(client: FlaskClient, proctor: dict[str, str],
                                                              exams: dict[str, dict[str, Any]]) -> None:
    body = client.get("/api/v1/exams/exam-1/alerts", headers=proctor).get_json()
    assert [a["id"] for a in body["alerts"]] == [exams["exam-1"]["alert"]]
    assert [s["session"] for s in body["sessions"]] == [exams["exam-1"]["session"]]
    snapshot = client.get(f"/proctor/exam-1/evidence/{exams['exam-1']['digest']}", headers=proctor)
    assert snapshot.status_code == 200 and snapshot.data == b"\xff\xd8\xffexam-1"


def test_an_unknown_snapshot_is_403_not_404_so_its_existence_does_not_leak(
        client: FlaskClient, proctor: dict[str, str], exams: dict[str, dict[str, Any]], services: Services) -> None:
    assert client.get("/api/v1/evidence/ZZZZZZZZZZZZZZZZZZZZZZ", headers=proctor).status_code == 403
    alert_on(services, "unit-1", "B" * 22)  # exam-1 carries it; not uploaded yet: the page retries on 404
    assert client.get(f"/api/v1/evidence/{'B' * 22}", headers=proctor).status_code == 404


def test_a_proctor_never_sees_a_pairing_code(services: Services, client: FlaskClient,
                                             proctor: dict[str, str]) -> None:
    client_token = {"Authorization": f"Bearer {services.tokens.create('client', 'pc')}"}
    waiting = services.sessions.create("exam-1", "cand-9", PHOTO)
    assert waiting.pairing_code is not None
    by_client = client.get(f"/api/v1/sessions/{waiting.session_id}", headers=client_token).get_json()
    assert by_client["pairing_code"] == waiting.pairing_code
    for url in (f"/api/v1/sessions/{waiting.session_id}", "/api/v1/exams/exam-1/alerts",
                "/proctor/exam-1/alerts", "/proctor/exam-1"):
        response = client.get(url, headers=proctor)
        assert response.status_code == 200, url
        assert waiting.pairing_code not in response.get_data(as_text=True), url
    assert client.get(f"/api/v1/sessions/{waiting.session_id}/qr.png", headers=proctor).status_code == 403


def cookie_of(response: Any) -> dict[str, str]:
    (header,) = response.headers.getlist("Set-Cookie")
    parts = [part.strip() for part in header.split(";")]
    name, _, value = parts[0].partition("=")
    attributes = {p.partition("=")[0].lower(): p.partition("=")[2] for p in parts[1:]}
    return {"name": name, "value": value, **attributes}


@pytest.mark.parametrize(("base", "secure_cookie", "secure"), [
    ("http://localhost", False, False), ("https://localhost", False, True), ("http://localhost", True, True)])
def test_the_link_sets_a_cookie_for_its_page_only(services: Services, base: str, secure_cookie: bool,
                                                  secure: bool) -> None:
    token = services.tokens.create("proctor", "desk", ["exam-1"])
    client = app_of(services, secure_cookie=secure_cookie).test_client()
    response = client.get(f"/proctor/exam-1?token={token}", base_url=base)
    assert response.status_code == 200 and response.mimetype == "text/html"  # the page itself: no redirect
    cookie = cookie_of(response)
    assert (cookie["name"], cookie["value"], cookie["path"]) == ("invigil_token", token, "/proctor/exam-1")
    assert "httponly" in cookie and cookie["samesite"] == "Strict" and "domain" not in cookie
    assert ("secure" in cookie) == secure
    assert token not in response.get_data(as_text=True)
    assert response.headers["Referrer-Policy"] == "no-referrer" and response.headers["Cache-Control"] == "no-store"
    # the cookie brings the page's data under its path, not another exam's page
    assert client.get("/proctor/exam-1/alerts", base_url=base).status_code == 200
    assert client.get("/proctor/exam-2/alerts", base_url=base).status_code in (401, 403)


def test_a_link_for_another_exam_is_refused_and_sets_nothing(services: Services, client: FlaskClient) -> None:
    token = services.tokens.create("proctor", "desk", ["exam-1"])
    response = client.get(f"/proctor/exam-2?token={token}")
    assert response.status_code == 403 and not response.headers.getlist("Set-Cookie")


def poll(client: FlaskClient, headers: dict[str, str], **query: Any) -> tuple[dict[str, Any], float]:
    began = time.monotonic()
    response = client.get("/proctor/exam-1/alerts", query_string=query, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json(), time.monotonic() - began


def test_the_poll_answers_at_once_with_news_and_waits_without(services: Services, client: FlaskClient,
                                                              proctor: dict[str, str],
                                                              exams: dict[str, dict[str, Any]]) -> None:
    first, _ = poll(client, proctor)
    assert [a["id"] for a in first["alerts"]] == [exams["exam-1"]["alert"]] and not first["waited"]
    assert first["cursor"] == exams["exam-1"]["alert"]
    tag = first["sessions_tag"]
    nothing, took = poll(client, proctor, after=first["cursor"], wait=0.5, seen=tag)
    assert nothing["alerts"] == [] and nothing["waited"] and 0.4 <= took < 5
    assert nothing["cursor"] == first["cursor"]
    stale, took = poll(client, proctor, after=first["cursor"], wait=30, seen="not-what-it-is")
    assert stale["sessions_tag"] == tag and not stale["waited"] and took < 5  # candidates changed: at once

    raised: list[int] = []
    timer = threading.Timer(0.3, lambda: raised.append(alert_on(services, "unit-1")))
    timer.start()
    try:
        news, took = poll(client, proctor, after=first["cursor"], wait=30, seen=tag)
    finally:
        timer.join(10)
    assert [a["id"] for a in news["alerts"]] == raised and news["waited"] and took < 10  # woken, not timed out


def test_a_poll_waits_only_while_a_waiting_slot_is_free(services: Services, exams: dict[str, dict[str, Any]],
                                                        proctor: dict[str, str]) -> None:
    app = app_of(services, threads=4, max_waiting=1)
    holder = app.test_client()
    first = holder.get("/proctor/exam-1/alerts", headers=proctor).get_json()
    query = {"after": first["cursor"], "wait": 3, "seen": first["sessions_tag"]}
    waiter = threading.Thread(target=lambda: holder.get("/proctor/exam-1/alerts", query_string=query,
                                                        headers=proctor))
    waiter.start()
    try:
        time.sleep(0.5)  # the first poll holds the only slot
        answer, took = poll(app.test_client(), proctor, **query)
        assert not answer["waited"] and took < 2
    finally:
        waiter.join(10)


@pytest.mark.parametrize(("query", "headers"), [
    ({"after": "²"}, {}), ({"after": "-1"}, {}), ({"after": "1" * 19}, {}), ({"wait": "x"}, {}),
    ({"wait": "-1"}, {}), ({"wait": "61"}, {}), ({"wait": "nan"}, {})])
def test_bad_cursors_and_waits_are_400(client: FlaskClient, proctor: dict[str, str], query: dict[str, str],
                                       headers: dict[str, str]) -> None:
    for path in ("/api/v1/exams/exam-1/alerts", "/proctor/exam-1/alerts"):
        response = client.get(path, query_string=query, headers={**proctor, **headers})
        assert response.status_code == 400 and response.get_json()["error"] == "bad_request", (path, query)


def test_a_bad_last_event_id_is_400(client: FlaskClient, proctor: dict[str, str]) -> None:
    response = client.get("/api/v1/exams/exam-1/stream", headers={**proctor, "Last-Event-ID": "²"})
    assert response.status_code == 400 and "Last-Event-ID" in response.get_json()["detail"]
