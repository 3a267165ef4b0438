"""The page's routes with Flask's test client: placement, the MJPEG preview, staff login and forms."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape

from edge_app.config import EdgeConfig
from edge_app.page.app import MAX_FAILURES
from edge_app.page.placement import BOUNDARY
from edge_app.page.publisher import CREDENTIALS_REFUSED
from edge_app.page.requests import SCHEMA
from edge_app.page.state import PageState
from edge_app.pairing import take_pair_code
from tests.edge.page.conftest import csrf_of, log_in

STAFF_GETS = ("/staff", "/staff/api/status")
STAFF_POSTS = ("/staff/pair", "/staff/wifi", "/staff/bridge")


def jpeg(value: int) -> bytes:
    ok, data = cv2.imencode(".jpg", np.full((48, 64, 3), value, np.uint8))
    assert ok
    return data.tobytes()


VERDICT = {"usable": False, "checks": {"candidate": False, "face": False, "hands": False, "desk": False,
                                       "screen": False, "light": True},
           "guidance": ["Nobody is seen in the seat: sit in your exam position and aim the camera at yourself."],
           "boxes": {"zone": [128.0, 48.0, 512.0, 480.0]}, "frame_size": [640, 480], "t": 3.0, "source": "live"}


def test_the_placement_page_shows_the_guidance_sentences(client: FlaskClient, state: PageState) -> None:
    assert b"Checking the placement" in client.get("/").data
    state.publish_placement(VERDICT)
    page = client.get("/")
    assert page.status_code == 200 and VERDICT["guidance"][0].encode() in page.data
    assert b'data-ready="false"' in page.data and b'src="/placement/stream"' in page.data
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]


def test_the_verdict_as_json_turns_ready_when_usable(client: FlaskClient, state: PageState) -> None:
    empty = client.get("/api/placement").get_json()
    assert empty["ready"] is False and empty["placement"] is None and empty["live"] is False
    state.publish_placement(VERDICT)
    state.publish_frame(jpeg(100))
    found = client.get("/api/placement").get_json()
    assert found["ready"] is False and found["live"] is True
    assert found["placement"]["guidance"] == VERDICT["guidance"] and found["placement"]["boxes"]["zone"]
    state.publish_placement({**VERDICT, "usable": True, "guidance": [], "checks": dict.fromkeys(VERDICT["checks"],
                                                                                               True)})
    assert client.get("/api/placement").get_json()["ready"] is True
    assert b'data-ready="true"' in client.get("/").data


def test_refused_credentials_are_said_on_the_placement_page_and_in_its_json(client: FlaskClient,
                                                                           state: PageState) -> None:
    assert client.get("/api/placement").get_json()["notice"] is None
    assert b'id="notice" class="notice" hidden' in client.get("/").data
    state.update_status(credentials_refused={"reason": "Not authorized", "message": CREDENTIALS_REFUSED})
    assert client.get("/api/placement").get_json()["notice"] == CREDENTIALS_REFUSED
    page = client.get("/").data.decode()
    assert '<p id="notice" class="notice">' in page and escape(CREDENTIALS_REFUSED) in page
    state.update_status(credentials_refused=None)
    assert client.get("/api/placement").get_json()["notice"] is None


def test_the_preview_is_a_multipart_stream_of_jpeg_parts(client: FlaskClient, state: PageState) -> None:
    state.publish_frame(jpeg(40))
    response = client.get("/placement/stream", buffered=False)
    assert response.status_code == 200
    assert response.mimetype == "multipart/x-mixed-replace"
    assert response.headers["Content-Type"].endswith(f"boundary={BOUNDARY}")
    feeder = threading.Timer(0.3, state.publish_frame, args=(jpeg(200),))
    feeder.start()
    body = b""
    chunks = iter(response.response)
    while body.count(f"--{BOUNDARY}".encode()) < 3:  # the first frame, the new one (and keep-alives)
        body += next(chunks)
    response.close()
    feeder.join()
    parts = [p for p in body.split(f"--{BOUNDARY}\r\n".encode()) if p]
    values = []
    for part in parts:
        head, _, data = part.partition(b"\r\n\r\n")
        assert b"Content-Type: image/jpeg" in head
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        image = cv2.imdecode(np.frombuffer(data[:length], np.uint8), cv2.IMREAD_GRAYSCALE)
        assert image is not None and image.shape == (48, 64)
        values.append(int(image.mean()))
    assert abs(values[0] - 40) < 5 and any(abs(v - 200) < 5 for v in values[1:])


def test_previews_are_limited_and_a_closed_one_frees_its_slot(app: Flask, state: PageState) -> None:
    state.publish_frame(jpeg(10))
    client = app.test_client()
    opened = [client.get("/placement/stream", buffered=False) for _ in range(4)]  # [page] streams: 4
    assert all(r.status_code == 200 for r in opened)
    assert client.get("/placement/stream", buffered=False).status_code == 503
    opened[0].close()
    again = client.get("/placement/stream", buffered=False)
    assert again.status_code == 200
    for response in [*opened[1:], again]:
        response.close()


@pytest.mark.parametrize("path", STAFF_GETS)
def test_staff_pages_need_a_login(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    if path.startswith("/staff/api/"):
        assert response.status_code == 401
    else:
        assert response.status_code == 302 and "/staff/login" in response.headers["Location"]


@pytest.mark.parametrize("path", STAFF_POSTS)
def test_staff_forms_need_a_login_even_with_a_token(client: FlaskClient, config: EdgeConfig, path: str) -> None:
    response = client.post(path, data={"csrf": csrf_of(client), "code": "ABCD-2345", "ssid": "x", "psk": "12345678",
                                       "host": "bridge.example"})
    assert response.status_code == 302 and "/staff/login" in response.headers["Location"]
    assert take_pair_code(config.data_dir) is None
    assert not config.page.requests_path(config.data_dir).exists()


def test_a_wrong_secret_is_refused(client: FlaskClient, secret: str) -> None:
    wrong = ("A" if secret[0] != "A" else "B") + secret[1:]
    response = client.post("/staff/login", data={"secret": wrong, "csrf": csrf_of(client)})
    assert response.status_code == 403 and b"not this unit" in response.data
    assert client.get("/staff").status_code == 302


def test_no_secret_on_the_unit_means_no_login(client: FlaskClient) -> None:
    assert b"no admin secret yet" in client.get("/staff/login").data
    response = client.post("/staff/login", data={"secret": "ABCDE-FGHJK-MNPQR-STUVW", "csrf": csrf_of(client)})
    assert response.status_code == 403


def test_guessing_is_locked_out_after_a_few_wrong_secrets(client: FlaskClient, secret: str) -> None:
    token = csrf_of(client)
    for _ in range(MAX_FAILURES):
        assert client.post("/staff/login", data={"secret": "WRONG", "csrf": token}).status_code == 403
    assert client.post("/staff/login", data={"secret": secret, "csrf": token}).status_code == 429


def test_a_login_without_the_csrf_token_is_refused(client: FlaskClient, secret: str) -> None:
    client.get("/staff/login")
    assert client.post("/staff/login", data={"secret": secret}).status_code == 400
    assert client.post("/staff/login", data={"secret": secret, "csrf": "forged"}).status_code == 400


def test_the_session_cookie_is_httponly_and_strict(client: FlaskClient, secret: str) -> None:
    response = client.post("/staff/login", data={"secret": secret, "csrf": csrf_of(client)})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_the_login_gives_a_new_csrf_token(client: FlaskClient, secret: str) -> None:
    before = csrf_of(client)
    log_in(client, secret)
    with client.session_transaction() as session:
        assert session["csrf"] != before and session["staff"] is True


def test_staff_see_pairing_queue_versions_and_errors(client: FlaskClient, state: PageState, secret: str) -> None:
    state.update_status(pairing="in_exam", exam="exam-7", session="s-1", queue=3, versions={"software": "0.1.0"})
    state.add_error("camera_stalled")
    log_in(client, secret)
    page = client.get("/staff")
    assert page.status_code == 200
    for text in (b"in_exam", b"exam-7", b"camera_stalled", b"0.1.0", b'<td id="queue">3</td>'):
        assert text in page.data
    status = client.get("/staff/api/status").get_json()
    assert status["queue"] == 3 and status["errors"][0]["text"] == "camera_stalled"


def test_staff_see_why_the_bridge_refuses_the_unit(client: FlaskClient, state: PageState, secret: str) -> None:
    log_in(client, secret)
    assert b'id="credentials"' not in client.get("/staff").data
    state.update_status(credentials_refused={"reason": "Not authorized", "message": CREDENTIALS_REFUSED})
    page = client.get("/staff").data.decode()
    assert escape(CREDENTIALS_REFUSED) in page and "the broker says: Not authorized" in page
    assert client.get("/staff/api/status").get_json()["credentials_refused"] == {
        "reason": "Not authorized", "message": CREDENTIALS_REFUSED}


def test_a_typed_pairing_code_reaches_the_running_unit(client: FlaskClient, config: EdgeConfig, secret: str) -> None:
    log_in(client, secret)
    with client.session_transaction() as session:
        token = session["csrf"]
    response = client.post("/staff/pair", data={"code": "abcd 2345", "csrf": token}, follow_redirects=True)
    assert b"handed to the unit" in response.data
    assert take_pair_code(config.data_dir) == "ABCD2345"
    response = client.post("/staff/pair", data={"code": "not a code!", "csrf": token}, follow_redirects=True)
    assert b"Not a pairing code" in response.data and take_pair_code(config.data_dir) is None
    assert client.post("/staff/pair", data={"code": "ABCD2345"}).status_code == 400  # no token
    assert take_pair_code(config.data_dir) is None


def test_wifi_and_bridge_forms_only_leave_requests(client: FlaskClient, config: EdgeConfig, secret: str) -> None:
    log_in(client, secret)
    with client.session_transaction() as session:
        token = session["csrf"]
    folder = config.page.requests_path(config.data_dir)
    refused = client.post("/staff/wifi", data={"ssid": "Centre", "psk": "short", "csrf": token}, follow_redirects=True)
    assert b"Wi-Fi not changed" in refused.data and not (folder / "wifi.json").exists()
    client.post("/staff/wifi", data={"ssid": "Centre", "psk": "correct horse", "csrf": token})
    wifi = folder / "wifi.json"
    assert stat.S_IMODE(wifi.stat().st_mode) == 0o600
    record = json.loads(wifi.read_text())
    assert record["schema"] == SCHEMA and record["kind"] == "wifi"
    assert (record["ssid"], record["psk"]) == ("Centre", "correct horse") and len(record["id"]) == 32
    client.post("/staff/bridge", data={"host": "bridge.centre.lan", "port": "8883", "csrf": token})
    bridge = json.loads((folder / "bridge.json").read_text())
    assert (bridge["kind"], bridge["host"], bridge["port"]) == ("bridge", "bridge.centre.lan", 8883)
    refused = client.post("/staff/bridge", data={"host": "a b; reboot", "csrf": token}, follow_redirects=True)
    assert b"Bridge not changed" in refused.data
    assert json.loads((folder / "bridge.json").read_text())["id"] == bridge["id"]
    status = client.get("/staff/api/status").get_json()
    assert status["requests"]["wifi"]["waiting"]["ssid"] == "Centre"
    assert "psk" not in status["requests"]["wifi"]["waiting"]  # the passphrase is never shown back
    assert sorted(p.name for p in Path(folder).iterdir()) == ["bridge.json", "wifi.json"]


def test_logout_ends_the_staff_session(client: FlaskClient, secret: str) -> None:
    log_in(client, secret)
    with client.session_transaction() as session:
        token = session["csrf"]
    assert client.post("/staff/logout", data={"csrf": token}).status_code == 302
    assert client.get("/staff").status_code == 302
