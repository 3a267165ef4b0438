"""The review pages in headless Chromium, served by waitress over real signed unit events: a reviewer logs in,
opens the exam, opens the riskiest session, steps to an alert with the keyboard, confirms it with a note and
follows the export link; the export verifies offline. Screenshots go to build/review/."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from cloud_bridge import audit
from cloud_bridge.broker_admin import BrokerAccounts
from cloud_bridge.config import HttpConfig
from cloud_bridge.decisions import Decisions
from cloud_bridge.enrol import BrokerAddress, Enrolment
from cloud_bridge.fleet import Fleet
from cloud_bridge.pc_events import PcEvents, issue_token
from cloud_bridge.review_access import assign
from cloud_bridge.services import Services
from cloud_bridge.staff import Staff
from cloud_bridge.store import Store
from cloud_bridge.verify import verify
from cloud_bridge.web import create_app
from cloud_bridge.web.fleet import FLEET
from cloud_bridge.web.review_auth import REVIEW, ReviewSettings
from tests.bridge.parts import BRIDGE_KEY, DEVICE_KEY, T0
from tests.bridge.review_parts import paired_session
from tests.bridge.test_proctor_page import THREADS, Served, browser, jpeg, wait
from tests.browser import needs_chromium

pytestmark = needs_chromium
SHOTS = Path(__file__).resolve().parents[2] / "build" / "review"
PASSWORD = "a long reviewer password"
EXAM = "exam-7"
__all__ = ["browser"]  # the fixture, shared with the live page's test


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    store = Store(f"sqlite:///{tmp_path / 'bridge.db'}")
    yield Services.build(store)
    store.close()


@pytest.fixture
def app(services: Services) -> Flask:
    store = services.store
    app = create_app(services, {"TESTING": True}, HttpConfig(threads=THREADS))  # type: ignore[call-arg]
    app.extensions[REVIEW] = ReviewSettings(BRIDGE_KEY)
    app.extensions[FLEET] = Fleet(store, BrokerAccounts(), Enrolment(store, BrokerAccounts(), BrokerAddress(
        "mqtt.test", 8883, True)), Staff(store, log_n=10))
    app.extensions[FLEET].staff.create("rita", PASSWORD, "cli", role="reviewer")
    assign(store, "rita", EXAM, "cli")
    return app


@pytest.fixture
def served(app: Flask) -> Iterator[Served]:
    serving = Served(app)
    yield serving
    serving.stop()


def exam_day(services: Services) -> str:
    """Three candidates: a quiet one, a talker, and one with a phone and a second monitor; the last one's id."""
    store = services.store
    quiet = paired_session(store, EXAM, "cand-quiet", "unit-1", services)
    clock = quiet.clock
    talker = paired_session(store, EXAM, "cand-talk", "unit-2", services, clock)
    talker.unit.alert(T0 + 60, T0 + 90, "talking", "warning", 0.6, snapshot=jpeg(320, 240, "talking"))
    phone = paired_session(store, EXAM, "cand-phone", "unit-3", services, clock)
    phone.unit.alert(T0 + 30, T0 + 75, "gaze_away", "info", 0.7)
    phone.unit.alert(T0 + 120, T0 + 170, "phone", "critical", 0.92, snapshot=jpeg(320, 240, "phone"))
    phone.unit.alert(T0 + 400, None, "extra_person", "critical", 0.8, snapshot=jpeg(320, 240, "second person"))
    token = issue_token(store, phone.session_id)
    PcEvents(store).post(phone.session_id, token, {"events": [
        {"kind": kind, "t": int((T0 + at) * 1000)} for kind, at in (
            ("focus_lost", 110), ("second_monitor", 115), ("focus_back", 180), ("answer_submitted", 590))]})
    clock.now = T0 + 250
    services.feed.device_offline("unit-3", "silent")
    clock.now = T0 + 310
    services.feed.device_back("unit-3")
    clock.now = T0 + 600
    for scene in (quiet, talker, phone):
        services.sessions.end(scene.session_id)
    return phone.session_id


def keys(driver: WebDriver, text: str) -> None:
    ActionChains(driver).send_keys(text).perform()


def test_a_reviewer_opens_the_riskiest_session_confirms_an_alert_and_exports(
        services: Services, served: Served, browser: WebDriver) -> None:
    riskiest = exam_day(services)
    SHOTS.mkdir(parents=True, exist_ok=True)
    downloads = SHOTS / "downloads"
    downloads.mkdir(exist_ok=True)
    for old in downloads.glob("*"):
        old.unlink()
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})

    browser.get(f"{served.url}/review/exams/{EXAM}")  # not logged in: the form, which comes back here
    wait(browser, lambda d: d.find_element(By.ID, "username"), "the login form")
    browser.find_element(By.ID, "username").send_keys("rita")
    browser.find_element(By.ID, "password").send_keys(PASSWORD + Keys.ENTER)
    rows = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#ranked tr.session"), "the ranked sessions")
    scores = [int(row.get_attribute("data-score") or -1) for row in rows]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1]
    assert rows[0].get_attribute("data-session") == riskiest
    assert len(rows[0].find_elements(By.CSS_SELECTOR, ".dim")) == 3  # the breakdown, never just a number
    assert "phone" in rows[0].find_element(By.CSS_SELECTOR, '.dim[data-dim="alerts"]').text
    browser.save_screenshot(str(SHOTS / "1-exam.png"))

    rows[0].find_element(By.CSS_SELECTOR, "a.open").click()
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "svg.timeline"), "the session's timeline")
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.timeline rect.bar")) == 3
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.timeline line.tick")) == 4
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.timeline rect.offline")) == 1
    browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")  # lazy snapshots: in view, loaded
    wait(browser, lambda d: all(img.get_attribute("naturalWidth") not in (None, "0")
                                for img in d.find_elements(By.CSS_SELECTOR, "#alerts img")), "the snapshots")
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(SHOTS / "2-session.png"))

    keys(browser, "jj")  # the second alert of the queue: the phone
    current = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#alerts li.alert.current"), "a current alert")
    assert "phone" in current.text and "50 s" in current.text and "0.92" in current.text
    keys(browser, "k")
    assert "gaze away" in browser.find_element(By.CSS_SELECTOR, "#alerts li.alert.current").text
    keys(browser, "j")
    keys(browser, "n")  # the note field
    keys(browser, "phone held under the desk" + Keys.ESCAPE)
    keys(browser, "c")
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#alerts li.alert.current .status").text == "confirmed",
         "the alert confirmed")
    browser.save_screenshot(str(SHOTS / "3-confirmed.png"))
    statuses = Decisions(services.store).statuses(riskiest, EXAM)
    decided = [(s.latest.verdict, s.latest.note, s.latest.reviewer) for s in statuses.values() if s.latest]
    assert decided == [("confirmed", "phone held under the desk", "rita")]

    browser.find_element(By.ID, "export").click()
    deadline = time.monotonic() + 20
    while not list(downloads.glob("*.jsonl")) and time.monotonic() < deadline:
        time.sleep(0.05)
    files = list(downloads.glob("*.jsonl"))
    assert files, "the export was not downloaded"
    result = verify(files[0].read_bytes(), DEVICE_KEY.public_key(), BRIDGE_KEY.public_key())
    assert result.events == 5  # the three alerts' start and end events, the last one still open
    actions = [(e["actor"], e["action"]) for e in audit.entries(services.store)]
    assert ("staff:rita", "export") in actions and ("staff:rita", "decide") in actions
    assert actions.count(("staff:rita", "read_evidence")) == 2  # each snapshot shown, once
