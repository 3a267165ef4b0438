"""The live proctor page in headless Chromium, served by waitress, fed by real signed device events."""

from __future__ import annotations

import hashlib
import http.client
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait
from waitress.server import create_server

from cloud_bridge.config import HttpConfig
from cloud_bridge.services import Services
from cloud_bridge.store import Store
from cloud_bridge.web import create_app, stop_server
from edge_app.link.events import EventWriter
from edge_app.link.outbox import Outbox
from edge_app.protocol import device_topic
from edge_app.protocol.commands import encode_stats
from edge_app.protocol.keys import public_pem
from edge_app.protocol.transport import status_payload
from tests.browser import chromium, needs_chromium

pytestmark = needs_chromium
EXAM, CANDIDATE, DEVICE = "exam-7", "cand-42", "unit-7"
THREADS = 8  # the server's, and the app's (half of them may wait for news)
WAIT = 20.0  # upper bound of every browser wait (a slow machine), never a speed requirement


def jpeg(width: int, height: int, label: str) -> bytes:
    image = np.full((height, width, 3), (40, 90, 160), np.uint8)
    cv2.rectangle(image, (width // 4, height // 4), (3 * width // 4, 3 * height // 4), (220, 220, 220), -1)
    cv2.putText(image, label, (8, height - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return data.tobytes()


class Served:
    """The app under waitress on 127.0.0.1, ``run()`` in a thread; ``stop()`` checks that run() returned."""

    def __init__(self, app: Flask, port: int = 0, threads: int = THREADS) -> None:
        self.app = app
        self.server: Any = create_server(app, host="127.0.0.1", port=port, threads=threads)
        self.port = int(self.server.effective_port)
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.run, name="waitress", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        stop_server(self.server, self.app, timeout=10.0)
        self.thread.join(10.0)
        assert not self.thread.is_alive(), "waitress run() did not return"
        assert not self.server.task_dispatcher.threads, "a worker thread (an event stream) outlived the server"


class Unit:
    """A camera unit: its key, its outbox and EventWriter (the device's code), delivering to the bridge."""

    def __init__(self, services: Services, tmp: Path, device_id: str = DEVICE) -> None:
        self.services, self.device_id = services, device_id
        key = Ed25519PrivateKey.generate()
        services.ingestor.register(device_id, public_pem(key))
        self.outbox = Outbox(tmp / f"{device_id}-outbox.db")
        self.writer = EventWriter(device_id, key, self.outbox, (640, 480))
        self.events: dict[str, str] = {}  # loop alert id -> start event id

    def alert(self, alert: str, phase: str, kind: str, severity: str = "critical",
              snapshot: bytes | None = None) -> str:
        message: dict[str, Any] = {"type": "alert", "id": alert, "phase": phase, "kind": kind, "severity": severity,
                                   "confidence": 0.87, "box": [100, 80, 300, 400]}
        if snapshot is not None:
            message["evidence"] = {"sha256": hashlib.sha256(snapshot).hexdigest()}
        event_id = self.writer.write(message)
        assert event_id is not None
        for pending_id, topic, payload in self.outbox.pending():
            assert self.services.dispatcher.handle(topic, payload) == "stored"
            self.outbox.ack(pending_id)
        self.events.setdefault(alert, event_id)
        return self.events[alert]

    def stats(self, session_id: str) -> None:
        payload = encode_stats({"d": self.device_id, "fps": 9.5, "inf_ms": 84.2, "queue": 3, "temp": 51.5,
                                "disk_mb": 2300, "session": session_id, "uptime": 120, "camera": "ok"}, 1)
        assert self.services.dispatcher.handle(device_topic(self.device_id, "stats"), payload) == "stats"

    def last_will(self) -> None:
        """The last will, and the bridge's sweep once the grace has passed (0 s here): device_offline."""
        assert self.services.dispatcher.handle(device_topic(self.device_id, "status"),
                                               status_payload("offline")) == "status"
        assert self.services.health.sweep() == [self.device_id]


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    store = Store(f"sqlite:///{tmp_path / 'bridge.db'}")
    yield Services.build(store, offline_grace=0.0)
    store.close()


@pytest.fixture
def app(services: Services) -> Flask:
    http = HttpConfig(threads=THREADS)  # type: ignore[call-arg]
    return create_app(services, {"PROCTOR_SNAPSHOT_RETRY_MS": 300}, http)


@pytest.fixture
def served(app: Flask) -> Iterator[Served]:
    serving = Served(app)
    yield serving
    serving.stop()


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    with chromium(1400, 1000) as driver:
        yield driver


@pytest.fixture
def unit(services: Services, tmp_path: Path) -> Iterator[Unit]:
    device = Unit(services, tmp_path)
    yield device
    device.outbox.close()


def wait(driver: WebDriver, condition: Any, what: str) -> Any:
    return WebDriverWait(driver, WAIT, poll_frequency=0.05,
                         ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(
        condition, message=what)


def card(driver: WebDriver, session_id: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, f'#sessions li.card[data-session="{session_id}"]')


def field(element: WebElement, name: str) -> str:
    return str(element.find_element(By.CSS_SELECTOR, f".{name} dd").text)


def alert_rows(driver: WebDriver) -> list[WebElement]:
    return list(driver.find_elements(By.CSS_SELECTOR, "#alerts > li.alert"))


def row(driver: WebDriver, alert_id: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, f'#alerts li.alert[data-alert="{alert_id}"]')


def upload(base: str, device: str, data: bytes) -> int:
    request = urllib.request.Request(f"{base}/api/v1/evidence", data=data, method="POST",
                                     headers={"X-Invigil-Device": device, "Content-Type": "image/jpeg"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def status_of(url: str, headers: dict[str, str] | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def open_page(driver: WebDriver, services: Services, base: str) -> str:
    """Create the proctor token, follow the staff link; returns the session id shown."""
    token = services.tokens.create("proctor", "page test", [EXAM])
    driver.get(f"{base}/proctor/{EXAM}?token={token}")
    wait(driver, lambda d: d.current_url == f"{base}/proctor/{EXAM}", "the redirect to the clean URL")
    cookie = driver.get_cookie("invigil_token")
    assert cookie is not None and cookie["value"] == token and cookie["httpOnly"]
    assert (cookie["path"], cookie["sameSite"], cookie["secure"]) == (f"/proctor/{EXAM}", "Strict", False)
    wait(driver, lambda d: d.find_element(By.ID, "connection").get_attribute("data-state") == "live", "live stream")
    driver.execute_script("window.invigilNoReload = 'same page';")
    return token


def same_page(driver: WebDriver) -> bool:
    return driver.execute_script("return window.invigilNoReload") == "same page"


def test_live_page_shows_health_and_alerts_as_they_arrive(services: Services, served: Served, browser: WebDriver,
                                                          unit: Unit) -> None:
    session = services.sessions.create(EXAM, CANDIDATE, jpeg(200, 240, "enrolled"))
    assert session.pairing_code is not None
    services.sessions.pair(DEVICE, session.pairing_code)
    unit.stats(session.session_id)
    open_page(browser, services, served.url)
    assert browser.find_element(By.ID, "exam-id").text == EXAM
    sid = session.session_id
    shown = card(browser, sid)
    assert shown.find_element(By.CSS_SELECTOR, "h3.candidate").text == CANDIDATE
    assert shown.get_attribute("data-state") == "paired" and shown.get_attribute("data-health") == "online"
    assert {name: field(shown, name) for name in ("device", "health", "fps", "inference", "queue", "temperature",
                                                  "disk", "camera")} == {
        "device": DEVICE, "health": "online", "fps": "9.5 fps", "inference": "84 ms", "queue": "3 events",
        "temperature": "51.5 °C", "disk": "2.2 GB", "camera": "ok"}
    assert field(shown, "heartbeat").endswith("ago") or field(shown, "heartbeat") == "just now"
    assert alert_rows(browser) == [] and browser.find_element(By.ID, "no-alerts").is_displayed()

    # a phone appears: the start event arrives first, its snapshot upload after the page asked for it
    snapshot = jpeg(320, 240, "phone")
    phone = unit.alert("a1", "start", "phone", "critical", snapshot)
    wait(browser, lambda d: len(alert_rows(d)) == 1, "the phone alert, live")
    shown_alert = row(browser, phone)
    assert shown_alert.find_element(By.CSS_SELECTOR, ".kind").text == "Phone or handheld device"
    assert shown_alert.find_element(By.CSS_SELECTOR, ".severity").text == "Critical"
    assert shown_alert.get_attribute("data-severity") == "critical"
    assert "open" in (shown_alert.get_attribute("class") or "").split()
    assert shown_alert.find_element(By.CSS_SELECTOR, ".candidate").text == CANDIDATE
    assert shown_alert.find_element(By.CSS_SELECTOR, ".status").text.startswith("Open")
    box = shown_alert.find_element(By.CSS_SELECTOR, ".snapshot")
    wait(browser, lambda d: int(box.get_attribute("data-tries") or 0) >= 1, "a first snapshot request (404)")
    assert upload(served.url, DEVICE, snapshot) == 201
    image = box.find_element(By.CSS_SELECTOR, "img.thumb")
    wait(browser, lambda d: box.get_attribute("data-state") == "loaded", "the snapshot after its upload")
    assert browser.execute_script("return arguments[0].naturalWidth", image) == 320
    assert field(card(browser, sid), "open-alerts") == "1"

    unit.alert("a1", "end", "phone", "critical")
    wait(browser, lambda d: row(d, phone).get_attribute("data-phase") == "ended", "the phone alert's end")
    ended = row(browser, phone)
    assert len(alert_rows(browser)) == 1  # updated in place
    assert ended.find_element(By.CSS_SELECTOR, ".status").text.startswith("Ended, lasted ")
    assert "open" not in (ended.get_attribute("class") or "").split()

    # the unit's last will: offline card and the bridge's device_offline alert, newest first
    unit.last_will()
    wait(browser, lambda d: card(d, sid).get_attribute("data-health") == "offline", "the device offline")
    assert card(browser, sid).find_element(By.CSS_SELECTOR, ".offline-banner").text.lower() == "device offline"
    assert field(card(browser, sid), "health") == "OFFLINE"
    wait(browser, lambda d: len(alert_rows(d)) == 2, "the device_offline alert")
    newest = alert_rows(browser)[0]
    assert newest.get_attribute("data-kind") == "device_offline" and newest.get_attribute("data-phase") == "open"
    assert newest.find_element(By.CSS_SELECTOR, ".kind").text == "Camera unit offline"
    assert newest.find_element(By.CSS_SELECTOR, ".severity").text == "Critical"

    # a heartbeat again: online, and device_offline ends in place
    unit.stats(session.session_id)
    wait(browser, lambda d: card(d, sid).get_attribute("data-health") == "online", "the device back online")
    wait(browser, lambda d: alert_rows(d)[0].get_attribute("data-phase") == "ended", "device_offline ended")
    assert not card(browser, sid).find_element(By.CSS_SELECTOR, ".offline-banner").is_displayed()
    assert len(alert_rows(browser)) == 2 and same_page(browser)


def test_a_snapshot_never_uploaded_shows_as_pending(services: Services, served: Served, browser: WebDriver,
                                                    unit: Unit) -> None:
    session = services.sessions.create(EXAM, CANDIDATE, jpeg(200, 240, "enrolled"))
    assert session.pairing_code is not None
    services.sessions.pair(DEVICE, session.pairing_code)
    open_page(browser, services, served.url)
    talking = unit.alert("t1", "start", "talking", "warning", jpeg(320, 240, "never sent"))
    wait(browser, lambda d: row(d, talking).get_attribute("data-severity") == "warning", "the talking alert")
    box = row(browser, talking).find_element(By.CSS_SELECTOR, ".snapshot")
    wait(browser, lambda d: box.get_attribute("data-state") == "pending", "snapshot pending after the retries")
    assert box.text.startswith("Snapshot pending")
    assert row(browser, talking).find_element(By.CSS_SELECTOR, ".severity").text == "Warning"


def test_the_page_reconnects_and_resumes_after_the_server_restarts(services: Services, app: Flask,
                                                                   browser: WebDriver, unit: Unit) -> None:
    session = services.sessions.create(EXAM, CANDIDATE, jpeg(200, 240, "enrolled"))
    assert session.pairing_code is not None
    services.sessions.pair(DEVICE, session.pairing_code)
    first = Served(app)
    try:
        open_page(browser, services, first.url)
        before = unit.alert("g1", "start", "gaze_away", "info")
        wait(browser, lambda d: len(alert_rows(d)) == 1, "the first alert")
    finally:
        first.stop()
    wait(browser, lambda d: d.find_element(By.ID, "connection").get_attribute("data-state") == "reconnecting",
         "the reconnecting state")
    assert "Reconnecting" in browser.find_element(By.ID, "connection").text
    during = unit.alert("x1", "start", "extra_person", "critical")  # while the page is cut off
    second = Served(app, first.port)
    try:
        wait(browser, lambda d: d.find_element(By.ID, "connection").get_attribute("data-state") == "live",
             "live again")
        wait(browser, lambda d: len(alert_rows(d)) == 2, "the alert raised while disconnected")
        assert [r.get_attribute("data-alert") for r in alert_rows(browser)] == [during, before]  # no duplicates
        assert same_page(browser)
    finally:
        second.stop()


def test_more_open_pages_than_server_threads_all_stay_live(services: Services, browser: WebDriver,
                                                           unit: Unit) -> None:
    """Five pages on a server of four threads (two may wait for news): every page shows a new alert, and the
    API answers all the while."""
    session = services.sessions.create(EXAM, CANDIDATE, jpeg(200, 240, "enrolled"))
    assert session.pairing_code is not None
    services.sessions.pair(DEVICE, session.pairing_code)
    http = HttpConfig(threads=4)  # type: ignore[call-arg]
    app = create_app(services, {"PROCTOR_SNAPSHOT_RETRY_MS": 300}, http)
    serving = Served(app, threads=http.threads)
    try:
        token = open_page(browser, services, serving.url)
        for _ in range(4):
            browser.switch_to.new_window("tab")
            browser.get(f"{serving.url}/proctor/{EXAM}")  # the cookie of the first: no token in the address
            wait(browser, lambda d: d.find_element(By.ID, "connection").get_attribute("data-state") == "live",
                 "another page live")
        tabs = browser.window_handles
        assert len(tabs) == 5
        began = time.monotonic()
        assert status_of(f"{serving.url}/api/v1/exams/{EXAM}/alerts", {"Authorization": f"Bearer {token}"}) == 200
        assert time.monotonic() - began < 2.0
        phone = unit.alert("p1", "start", "phone")
        for tab in tabs:
            browser.switch_to.window(tab)
            wait(browser, lambda d: [r.get_attribute("data-alert") for r in alert_rows(d)] == [phone],
                 "the alert on every page")
    finally:
        serving.stop()


def test_without_a_token_the_page_and_its_data_are_refused(services: Services, served: Served) -> None:
    base = served.url
    assert status_of(f"{base}/proctor/{EXAM}") == 401
    assert status_of(f"{base}/proctor/{EXAM}?token=not-a-token") == 401
    client = services.tokens.create("client", "pc")
    assert status_of(f"{base}/proctor/{EXAM}?token={client}") == 401  # a client token is no proctor link
    assert status_of(f"{base}/api/v1/exams/{EXAM}/stream") == 401
    assert status_of(f"{base}/api/v1/exams/{EXAM}/alerts") == 401
    assert status_of(f"{base}/api/v1/evidence/AAAAAAAAAAAAAAAAAAAAAA") == 401
    proctor = services.tokens.create("proctor", "desk", [EXAM])
    assert status_of(f"{base}/api/v1/exams/{EXAM}/alerts", {"Authorization": f"Bearer {proctor}"}) == 200
    assert status_of(f"{base}/static/proctor.js") == 200


def test_stop_server_ends_run_with_an_event_stream_open(services: Services, app: Flask) -> None:
    """``server.close()`` leaves run() serving open connections; stop_server ends it and the stream's thread."""
    serving = Served(app)
    token = services.tokens.create("proctor", "stream", [EXAM])
    connection = http.client.HTTPConnection("127.0.0.1", serving.port, timeout=10)
    try:
        connection.request("GET", f"/api/v1/exams/{EXAM}/stream", headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        assert response.status == 200 and response.getheader("Content-Type", "").startswith("text/event-stream")
        assert response.readline() == b"event: sessions\n"
        serving.stop()  # asserts run() returned and no worker thread is left
    finally:
        connection.close()
