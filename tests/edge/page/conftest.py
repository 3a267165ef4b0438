"""The unit's page under test: one process holds the unit's side (PageState) and the Flask app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from edge_app import admin_secret
from edge_app.calibrate import Calibrator
from edge_app.config import EdgeConfig, parse
from edge_app.page import create_app
from edge_app.page.state import PageState

DEVICE = "unit-7"


def unit_config(tmp_path: Path, **page: object) -> EdgeConfig:
    return parse({"device_id": DEVICE, "data_dir": str(tmp_path / "data"),
                  "camera": {"type": "scenario", "path": str(tmp_path / "scenario")},
                  "analysis": {"calibration_seconds": 1}, "page": page}, environ={})


@pytest.fixture
def config(tmp_path: Path) -> EdgeConfig:
    return unit_config(tmp_path)


@pytest.fixture
def state() -> PageState:
    return PageState()


@pytest.fixture
def secret(config: EdgeConfig) -> str:
    """The unit's admin secret, made as at first boot."""
    made = admin_secret.ensure(config.data_dir)
    assert made is not None
    return made


@pytest.fixture
def app(state: PageState, config: EdgeConfig) -> Flask:
    return create_app(state, config, {"TESTING": True, "STREAM_KEEPALIVE": 0.2})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def csrf_of(client: FlaskClient, path: str = "/staff/login") -> str:
    """The CSRF token of the session, as the form at ``path`` carries it."""
    client.get(path)
    with client.session_transaction() as session:
        return str(session["csrf"])


def log_in(client: FlaskClient, secret: str) -> None:
    response = client.post("/staff/login", data={"secret": secret, "csrf": csrf_of(client)})
    assert response.status_code == 302 and response.headers["Location"].endswith("/staff")


def good_placement_message(t: float = 5.0) -> dict[str, Any]:
    """The loop's calibration message for a good placement: the real Calibrator fed what the models report
    for a seated candidate with face, both hands on the desk and the PC screen in view (as
    tests/edge/test_calibrate.py does; no rendered scenario shows all of it to the int8 models)."""
    calibrator = Calibrator((640, 480))
    image = np.full((480, 640, 3), 120, np.uint8)
    points = np.zeros((17, 3), np.float32)
    points[9], points[10] = (260, 380, 0.8), (380, 380, 0.8)
    for _ in range(10):
        calibrator.add(image, (200.0, 60.0, 440.0, 460.0), points, (20.0, 5.0), [(480.0, 50.0, 630.0, 200.0)])
    cal = calibrator.finish()
    assert cal.placement.usable
    return {"type": "calibration", "t": t, "usable": cal.placement.usable, "checks": cal.placement.checks,
            "guidance": cal.placement.guidance, "zone": [round(v, 1) for v in cal.zone], "yaw": round(cal.yaw, 1),
            "pitch": round(cal.pitch, 1)}
