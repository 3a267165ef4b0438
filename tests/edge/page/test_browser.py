"""The placement page in headless Chromium, served by waitress, fed by the unit's side with the real int8
models on scenario videos: a bad placement shows its guidance and the overlay, a good one turns ready;
refused credentials show their sentence until accepted again. Screenshots are kept under build/page/."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from flask import Flask
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from edge_app.calibrate import GUIDANCE
from edge_app.config import EdgeConfig
from edge_app.page import create_app
from edge_app.page.config import PageConfig
from edge_app.page.overlay import ZONE
from edge_app.page.publisher import CREDENTIALS_REFUSED, PagePublisher
from edge_app.page.serve import make_server, stop_server
from edge_app.page.state import PageState
from edge_app.vision.models import VisionModels, load_models
from tests.browser import chromium, needs_chromium
from tests.edge.conftest import Scene, write_scenario
from tests.edge.page.conftest import good_placement_message
from tests.edge.page.test_publisher import play

pytestmark = needs_chromium
SHOTS = Path(__file__).resolve().parents[3] / "build" / "page"
WAIT = 20.0  # upper bound of every browser wait (a slow machine), never a speed requirement
PAGE = PageConfig(placement_seconds=1.0, placement_hz=5.0, preview_fps=5.0)  # type: ignore[call-arg]


class Served:
    """The page under waitress on 127.0.0.1, ``run()`` in a thread; ``stop()`` checks that run() returned."""

    def __init__(self, app: Flask, state: PageState) -> None:
        self.state = state
        self.server: Any = make_server(app, "127.0.0.1", 0, 4)
        self.url = f"http://127.0.0.1:{int(self.server.effective_port)}"
        self.thread = threading.Thread(target=self.server.run, name="waitress", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        stop_server(self.server, self.state, timeout=10.0)
        self.thread.join(10.0)
        assert not self.thread.is_alive(), "waitress run() did not return"
        assert not self.server.task_dispatcher.threads, "a preview stream outlived the server"


@pytest.fixture(scope="module")
def models(models_dir: Path) -> VisionModels:
    return load_models(models_dir, "int8", threads=1)


@pytest.fixture
def served(state: PageState, config: EdgeConfig) -> Iterator[Served]:
    serving = Served(create_app(state, config), state)
    yield serving
    serving.stop()


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    with chromium(1280, 800) as driver:
        yield driver


def preview_zone_share(browser: WebDriver) -> float:
    """The share of the preview's pixels in the seat zone's colour, as the browser shows it."""
    png = browser.find_element(By.ID, "preview").screenshot_as_png
    image = cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return float((np.abs(image.astype(int) - np.array(ZONE)).max(axis=2) < 50).mean())


def failed_checks(browser: WebDriver) -> set[str]:
    """The checks the page shows as failed (read in one go: the list is redrawn every second)."""
    found = browser.execute_script("return [...document.querySelectorAll('#checks .failed')]"
                                   ".map((li) => li.dataset.check)")
    return set(found)


def text_of(browser: WebDriver, element_id: str) -> str:
    return str(browser.find_element(By.ID, element_id).text)


def test_a_bad_placement_shows_guidance_and_overlay_then_a_good_one_turns_ready(
        served: Served, browser: WebDriver, state: PageState, models: VisionModels, scene: Scene,
        tmp_path: Path) -> None:
    publisher = PagePublisher(state, PAGE, models)
    empty = write_scenario(tmp_path / "empty", [scene(None, seed) for seed in range(10)], fps=5.0)
    play(publisher, empty)  # nobody in the seat: the live check says so
    assert state.snapshot()["placement"]["usable"] is False

    browser.get(served.url + "/")
    wait = WebDriverWait(browser, WAIT)
    wait.until(lambda b: GUIDANCE["candidate"] in text_of(b, "guidance"))
    assert browser.find_element(By.ID, "verdict").get_attribute("data-ready") == "false"
    assert text_of(browser, "headline") == "Adjust the camera"
    assert {"candidate", "face", "hands", "desk", "screen"} <= failed_checks(browser)
    wait.until(lambda b: b.execute_script("const i = document.getElementById('preview');"
                                          "return i.complete && i.naturalWidth > 0 ? i.naturalWidth : 0") == 640)
    wait.until(lambda b: preview_zone_share(b) > 0.005)  # the seat zone drawn over the live picture
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "placement-bad.png"))

    publisher.emit(good_placement_message())  # the placement is usable: the unit says ready
    seated = write_scenario(tmp_path / "seated", [scene("obama2.jpg", seed) for seed in range(5)], fps=5.0)
    play(publisher, seated)
    wait.until(lambda b: b.find_element(By.ID, "verdict").get_attribute("data-ready") == "true")
    assert text_of(browser, "headline") == "Ready" and text_of(browser, "guidance") == ""
    assert failed_checks(browser) == set()
    wait.until(lambda b: preview_zone_share(b) > 0.005)
    browser.save_screenshot(str(SHOTS / "placement-ready.png"))
    assert (SHOTS / "placement-bad.png").stat().st_size > 10_000

    publisher.emit({"type": "status", "state": "credentials_refused", "reason": "Not authorized"})  # revoked
    wait.until(lambda b: b.find_element(By.ID, "notice").is_displayed())
    assert text_of(browser, "notice") == CREDENTIALS_REFUSED
    browser.save_screenshot(str(SHOTS / "placement-refused.png"))
    publisher.emit({"type": "status", "state": "credentials_accepted"})
    wait.until(lambda b: not b.find_element(By.ID, "notice").is_displayed())
