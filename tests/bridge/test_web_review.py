"""The review's HTTP side with Flask's test client (flaskr style) on SQLite and PostgreSQL: the PC's events, the
pages and their JSON, decisions, exports, assignments, and access: a reviewer or a proctor token of one exam
gets 403 on another exam's sessions, alerts, evidence and exports; every snapshot shown is audited."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cloud_bridge import audit
from cloud_bridge.broker_admin import BrokerAccounts
from cloud_bridge.config import HttpConfig
from cloud_bridge.enrol import BrokerAddress, Enrolment
from cloud_bridge.fleet import Fleet
from cloud_bridge.services import Services
from cloud_bridge.staff import Staff
from cloud_bridge.store import Store
from cloud_bridge.verify import verify
from cloud_bridge.web import create_app
from cloud_bridge.web.fleet import FLEET
from cloud_bridge.web.review_auth import COOKIE, REVIEW, ReviewSettings
from tests.bridge.parts import BRIDGE_KEY, DEVICE_KEY, PHOTO, T0
from tests.bridge.review_parts import UnitChain, digest_of, paired_session

PASSWORD = "a long staff password"
SNAP_A, SNAP_B = b"\xff\xd8\xff\xe0snapshot-a", b"\xff\xd8\xff\xe0snapshot-b"


@dataclass
class World:
    app: Flask
    client: FlaskClient
    services: Services
    a: str  # session of exam-a (two alerts, one with a snapshot)
    b: str  # session of exam-b (one alert with a snapshot)
    alert_a: str
    headers: dict[str, dict[str, str]]


def login(client: FlaskClient, name: str) -> dict[str, str]:
    token = client.post("/api/v1/staff/login", json={"username": name, "password": PASSWORD}).get_json()["token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def world(store: Store) -> World:
    services = Services.build(store)
    scene = paired_session(store, "exam-a", "cand-a", "unit-1", services)
    alert_a = scene.unit.alert(T0 + 10, T0 + 70, "phone", "critical", 0.9, snapshot=SNAP_A)
    scene.unit.alert(T0 + 100, T0 + 104, "gaze_away", "info", 0.6)
    quiet = paired_session(store, "exam-a", "cand-q", "unit-3", services, scene.clock)
    scene.clock.now = T0 + 300
    services.sessions.end(scene.session_id)
    services.sessions.end(quiet.session_id)
    other = paired_session(store, "exam-b", "cand-b", "unit-2", services, scene.clock)
    UnitChain(services, "unit-2", DEVICE_KEY).alert(T0 + 320, T0 + 330, "talking", snapshot=SNAP_B)
    app = create_app(services, {"TESTING": True}, http=HttpConfig(rate_per_second=10_000, rate_burst=100_000))  # type: ignore[call-arg]
    app.extensions[REVIEW] = ReviewSettings(BRIDGE_KEY)
    app.extensions[FLEET] = Fleet(store, BrokerAccounts(), Enrolment(store, BrokerAccounts(), BrokerAddress(
        "mqtt.test", 8883, True)), Staff(store, log_n=10))
    staff = app.extensions[FLEET].staff
    staff.create("root", PASSWORD, "cli")
    client = app.test_client()
    headers = {"staff": login(client, "root")}
    created = client.post("/api/v1/staff/users", headers=headers["staff"],
                          json={"username": "rita", "password": PASSWORD, "role": "reviewer"})
    assert created.status_code == 201
    headers["reviewer"] = login(client, "rita")
    assert client.put("/api/v1/exams/exam-a/reviewers/rita", headers=headers["staff"]).get_json()["changed"]
    headers["proctor_a"] = {"Authorization": f"Bearer {services.tokens.create('proctor', 'pa', ['exam-a'])}"}
    headers["client"] = {"Authorization": f"Bearer {services.tokens.create('client', 'pc')}"}
    return World(app, client, services, scene.session_id, other.session_id, alert_a, headers)


def test_a_session_gives_its_pc_client_a_token_that_posts_its_events(world: World) -> None:
    import base64

    created = world.client.post("/api/v1/sessions", headers=world.headers["client"], json={
        "exam_id": "exam-a", "candidate_id": "cand-z", "photo": base64.b64encode(PHOTO).decode()})
    assert created.status_code == 201
    session_id, token = created.get_json()["session_id"], created.get_json()["pc_token"]
    assert "pc_token" not in world.client.get(f"/api/v1/sessions/{session_id}",
                                              headers=world.headers["client"]).get_json()
    url = f"/api/v1/sessions/{session_id}/pc-events"
    batch = {"events": [{"kind": "focus_lost", "t": 1}, {"kind": "second_monitor", "t": 2, "detail": {"n": 2}}]}
    posted = world.client.post(url, json=batch, headers={"Authorization": f"Bearer {token}"})
    assert posted.status_code == 201 and posted.get_json() == {"stored": 2}
    for headers, status, reason in (({}, 401, "unauthorized"), (world.headers["client"], 401, "unauthorized")):
        refused = world.client.post(url, json=batch, headers=headers)
        assert (refused.status_code, refused.get_json()["error"]) == (status, reason)
    bad = world.client.post(url, json={"events": [{"kind": "nap", "t": 1}]},
                            headers={"Authorization": f"Bearer {token}"})
    assert bad.status_code == 400 and "kind" in bad.get_json()["detail"]
    big = world.client.post(url, data=b"x" * 20_000, headers={"Authorization": f"Bearer {token}",
                                                               "Content-Type": "application/json"})
    assert big.status_code == 413


@pytest.mark.parametrize("who", ["reviewer", "proctor_a"])
def test_one_exams_viewer_gets_403_on_another_exams_sessions_alerts_evidence_and_exports(world: World,
                                                                                         who: str) -> None:
    headers, b = world.headers[who], world.b
    for method, url in (("get", f"/api/v1/sessions/{b}/review"), ("get", f"/api/v1/sessions/{b}/export"),
                        ("get", "/api/v1/exams/exam-b/review"), ("get", f"/review/sessions/{b}"),
                        ("get", f"/review/sessions/{b}/evidence/{digest_of(SNAP_B)}"), ("get", "/review/exams/exam-b"),
                        ("post", f"/api/v1/sessions/{b}/decisions")):
        answer = getattr(world.client, method)(url, headers=headers, json={"verdict": "confirmed", "note": ""}
                                               if method == "post" else None)
        assert answer.status_code == 403, (who, url, answer.status_code)
    if who == "proctor_a":  # the proctor API of before keeps its scope
        assert world.client.get(f"/api/v1/sessions/{b}", headers=headers).status_code == 403
        assert world.client.get(f"/api/v1/evidence/{digest_of(SNAP_B)}", headers=headers).status_code == 403
        assert world.client.get("/api/v1/exams/exam-b/alerts", headers=headers).status_code == 403
    assert world.client.get(f"/api/v1/sessions/{world.a}/review", headers=headers).status_code == 200
    assert not [e for e in audit.entries(world.services.store) if e["action"] in ("read_evidence", "export")]


def test_the_exam_ranks_its_sessions_with_each_scores_breakdown(world: World) -> None:
    ranked = world.client.get("/api/v1/exams/exam-a/review", headers=world.headers["reviewer"]).get_json()
    assert [s["candidate_id"] for s in ranked["sessions"]] == ["cand-a", "cand-q"]
    top = ranked["sessions"][0]
    assert top["score"] > 0 and [d["name"] for d in top["dimensions"]] == ["alerts", "health", "pc"]
    assert "phone" in top["dimensions"][0]["detail"] and top["alerts"] == 2
    page = world.client.get("/review/exams/exam-a", headers=world.headers["reviewer"]).get_data(as_text=True)
    assert page.index("cand-a") < page.index("cand-q") and page.count('class="dim"') == 6
    assert "weighted alert seconds" in page


def test_the_session_page_plots_and_lists_alerts_and_each_snapshot_read_is_audited(world: World) -> None:
    headers = world.headers["reviewer"]
    page = world.client.get(f"/review/sessions/{world.a}", headers=headers).get_data(as_text=True)
    assert page.count('class="bar sev-') == 2 and f'data-alert="{world.alert_a}"' in page and "<svg" in page
    assert f"/api/v1/sessions/{world.a}/export" in page and "60 s" in page and "0.90" in page
    assert page.count('class="muted clip"') == 1  # the alert with a snapshot: its clip is on the unit
    snap = world.client.get(f"/review/sessions/{world.a}/evidence/{digest_of(SNAP_A)}", headers=headers)
    assert snap.status_code == 200 and snap.data == SNAP_A
    reads = [(e["actor"], e["target"]) for e in audit.entries(world.services.store) if e["action"] == "read_evidence"]
    assert reads == [("staff:rita", digest_of(SNAP_A))]
    # another exam's snapshot is not reached through a session of this one
    assert world.client.get(f"/review/sessions/{world.a}/evidence/{digest_of(SNAP_B)}",
                            headers=headers).status_code == 404
    assert len([e for e in audit.entries(world.services.store) if e["action"] == "read_evidence"]) == 1


def test_decisions_by_logins_only_json_only_and_the_second_reviewer_policy(world: World) -> None:
    from cloud_bridge.store.models import ExamPolicy

    with world.services.store.session() as session, session.begin():
        session.add(ExamPolicy(exam_id="exam-a", two_reviewers=True, set_at=T0, set_by="staff:root"))
    url = f"/api/v1/sessions/{world.a}/decisions"
    body = {"alert_id": world.alert_a, "verdict": "confirmed", "note": "phone"}
    assert world.client.post(url, json=body, headers=world.headers["proctor_a"]).status_code == 403
    assert world.client.post(url, data={"verdict": "confirmed"}, headers=world.headers["reviewer"]).status_code == 400
    assert world.client.post(url, json=body, headers=world.headers["reviewer"]).status_code == 201
    detail = world.client.get(f"/api/v1/sessions/{world.a}/review", headers=world.headers["reviewer"]).get_json()
    assert detail["alerts"][0]["decision"]["status"] == "awaiting_second_review"
    assert world.client.post(url, json=body, headers=world.headers["staff"]).status_code == 201
    detail = world.client.get(f"/api/v1/sessions/{world.a}/review", headers=world.headers["staff"]).get_json()
    assert detail["alerts"][0]["decision"]["status"] == "confirmed"
    assert detail["alerts"][0]["decision"]["confirmed_by"] == ["rita", "root"]


def test_the_export_is_access_checked_audited_and_verifies(world: World) -> None:
    answer = world.client.get(f"/api/v1/sessions/{world.a}/export", headers=world.headers["proctor_a"])
    assert answer.status_code == 200 and answer.mimetype == "application/x-ndjson"
    assert verify(answer.data, DEVICE_KEY.public_key(), BRIDGE_KEY.public_key()).events == 4
    exports = [(e["actor"], e["target"]) for e in audit.entries(world.services.store) if e["action"] == "export"]
    assert exports == [("token:pa", world.a)]
    assert world.client.get(f"/api/v1/sessions/{world.a}/export", headers=world.headers["client"]).status_code == 403
    assert world.client.get(f"/api/v1/sessions/{world.a}/export").status_code == 401


def test_assignments_are_staffs_and_a_reviewer_cannot_run_the_fleet(world: World) -> None:
    reviewer = world.headers["reviewer"]
    assert world.client.put("/api/v1/exams/exam-b/reviewers/rita", headers=reviewer).status_code == 403
    assert world.client.get("/api/v1/fleet", headers=reviewer).status_code == 403
    assert world.client.get("/api/v1/exams/exam-a/reviewers", headers=world.headers["staff"]).get_json()[
        "reviewers"] == ["rita"]
    assert world.client.put("/api/v1/exams/exam-a/reviewers/root", headers=world.headers["staff"]).status_code == 404
    assert world.client.delete("/api/v1/exams/exam-a/reviewers/rita", headers=world.headers["staff"]).get_json()[
        "changed"] is True
    assert world.client.get("/api/v1/exams/exam-a/review", headers=reviewer).status_code == 403


def test_the_pages_log_in_with_a_form_and_a_cookie(world: World) -> None:
    client = world.app.test_client()
    first = client.get("/review/exams/exam-a")
    assert first.status_code == 302 and "/review/login" in first.headers["Location"]
    wrong = client.post("/review/login", data={"username": "rita", "password": "nope", "next": "/review"})
    assert wrong.status_code == 200 and "Wrong user name" in wrong.get_data(as_text=True)  # the form again
    done = client.post("/review/login", data={"username": "rita", "password": PASSWORD,
                                               "next": "https://elsewhere.example/"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/review")  # never another site
    cookie = done.headers["Set-Cookie"]
    assert cookie.startswith(COOKIE + "=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    index = client.get("/review").get_data(as_text=True)
    assert "exam-a" in index and "exam-b" not in index
    assert client.get("/review/exams/exam-a").status_code == 200
    assert client.get("/review/exams/exam-b").status_code == 403
    client.post("/review/logout")
    assert client.get("/review/exams/exam-a").status_code == 302


def test_the_login_form_says_an_account_is_locked_and_for_how_long(world: World) -> None:
    client = world.app.test_client()
    form = {"username": "rita", "password": "not the password", "next": "/review"}
    answers = [client.post("/review/login", data=form) for _ in range(10)]  # fleet.staff_lockout_after
    assert [a.status_code for a in answers] == [200] * 9 + [429]
    assert "Wrong user name" in answers[0].get_data(as_text=True)
    right = client.post("/review/login", data={**form, "password": PASSWORD})
    text = right.get_data(as_text=True)
    assert right.status_code == 429 and "Set-Cookie" not in right.headers
    assert 890 <= int(right.headers["Retry-After"]) <= 900  # fleet.staff_lockout_seconds, less the time since
    assert "This account is locked after too many failed logins. Try again in 15 minutes" in text
    assert 'role="alert"' in text and 'name="username"' in text  # the form again, saying why
    lockouts = [e for e in audit.entries(world.services.store) if e["action"] == "lockout"]
    assert [(e["actor"], e["target"], e["detail"]["failures"]) for e in lockouts] == [("staff:rita", "rita", 10)]


def test_a_proctor_tokens_snapshot_reads_are_audited_too(world: World) -> None:
    for url in (f"/api/v1/evidence/{digest_of(SNAP_A)}", f"/proctor/exam-a/evidence/{digest_of(SNAP_A)}"):
        shown = world.client.get(url, headers=world.headers["proctor_a"])
        assert shown.status_code == 200 and shown.data == SNAP_A
    reads = [(e["actor"], e["target"], e["detail"]) for e in audit.entries(world.services.store)
             if e["action"] == "read_evidence"]
    assert reads == [("token:pa", digest_of(SNAP_A), {"exam_id": "exam-a"})] * 2


def test_staff_set_an_exams_policy_and_release_an_ended_session_audited(world: World) -> None:
    staff, reviewer = world.headers["staff"], world.headers["reviewer"]
    shown = world.client.get("/api/v1/exams/exam-a/policy", headers=reviewer).get_json()
    assert (shown["retention_days"], shown["two_reviewers"], shown["set_by"]) == (30.0, False, None)  # defaults
    assert world.client.put("/api/v1/exams/exam-a/policy", headers=reviewer, json={"two_reviewers": True}
                            ).status_code == 403
    assert world.client.get("/api/v1/exams/exam-b/policy", headers=reviewer).status_code == 403
    answer = world.client.put("/api/v1/exams/exam-a/policy", headers=staff, json={"two_reviewers": True,
                                                                                  "retention_days": 90})
    assert answer.status_code == 200 and answer.get_json()["two_reviewers"] is True
    assert world.client.put("/api/v1/exams/exam-a/policy", headers=staff, json={"dismissed_grace_hours": 2}
                            ).get_json()["retention_days"] == 90  # fields not given keep their value
    assert world.client.put("/api/v1/exams/exam-a/policy", headers=staff, json={"retention_days": 0}
                            ).get_json()["error"] == "invalid"
    released = world.client.post(f"/api/v1/sessions/{world.a}/release", headers=staff, json={"note": "appeal over"})
    assert released.status_code == 201 and released.get_json()["released_by"] == "staff:root"
    again = world.client.post(f"/api/v1/sessions/{world.a}/release", headers=staff, json={"note": "twice"})
    assert (again.status_code, again.get_json()["error"]) == (409, "released")
    running = world.client.post(f"/api/v1/sessions/{world.b}/release", headers=staff, json={"note": "early"})
    assert (running.status_code, running.get_json()["error"]) == (409, "not_ended")
    assert world.client.post(f"/api/v1/sessions/{world.a}/release", headers=reviewer, json={"note": "x"}
                             ).status_code == 403
    actions = [entry["action"] for entry in world.client.get("/api/v1/audit", headers=staff).get_json()["entries"]]
    assert actions.count("set_policy") == 2 and actions.count("release") == 1
