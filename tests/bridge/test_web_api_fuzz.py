"""Fuzzing the HTTP API from its OpenAPI description (cloud_bridge/web/openapi.json) with schemathesis: for every
operation, requests that follow the description and requests that break it, each with a client token, a
proctor token of the exam or of another exam, a garbage token or none, against the Flask app of
``create_app`` over a temporary SQLite store. No answer is a server error, and every 4xx is JSON that says
why (``error`` and ``detail``).

Polls answer at once and event streams are refused with 503 ``busy`` and ``Retry-After`` (the test holds
the one waiting slot): that is the bridge's designed answer to too many waiting requests, the only 5xx
allowed. ``INVIGIL_FUZZ_LONG=1`` (``make fuzz``) runs 1,000 cases per operation instead of 40.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from cloud_bridge.config import HttpConfig
from cloud_bridge.services import Services
from cloud_bridge.store import Store
from cloud_bridge.web import OPENAPI, create_app
from tests.bridge.parts import PHOTO, register

LONG = os.environ.get("INVIGIL_FUZZ_LONG") == "1"
CASES = 1000 if LONG else 40
SCHEMA = schemathesis.openapi.from_path(str(OPENAPI))
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
WHO = ("client", "proctor", "other_proctor", "garbage", "none")


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[Flask, dict[str, str]]]:
    """The app over a fresh store with a unit, a paired session and tokens; the waiting slot held."""
    store = Store(f"sqlite:///{tmp_path / 'bridge.db'}")
    services = Services.build(store)
    register(store, "unit-1")
    view = services.sessions.create("math-101", "cand-1", PHOTO)
    services.sessions.pair("unit-1", view.pairing_code or "")
    tokens = {"client": services.tokens.create("client", "fuzz"),
              "proctor": services.tokens.create("proctor", "fuzz", ["math-101"]),
              "other_proctor": services.tokens.create("proctor", "fuzz", ["physics-2"]), "garbage": "x" * 43}
    flask_app = create_app(services, {"TESTING": True},
                           http=HttpConfig(rate_per_second=10_000, rate_burst=100_000, threads=4, max_waiting=1))
    flask_app.extensions["invigil_guards"].waiting.enter()  # polls answer at once, streams are refused (busy)
    yield flask_app, tokens
    store.close()


def check(response: Any, label: str) -> None:
    """No server error (but the designed ``busy``); a 4xx is JSON naming the error and saying why."""
    where = f"{label} -> {response.status_code}: {response.content[:300]!r}"
    header = {name.lower(): values[0] for name, values in response.headers.items()}  # schemathesis: name -> values
    if response.status_code == 503:
        assert response.json().get("error") == "busy" and header.get("retry-after"), where
        return
    assert response.status_code < 500, where
    if response.status_code >= 400:
        assert header.get("content-type", "").startswith("application/json"), where
        body = response.json()
        assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], where
        assert isinstance(body.get("detail"), str) and body["detail"], where


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.label)
def test_no_server_errors_and_every_4xx_says_why(app: tuple[Flask, dict[str, str]], operation: Any) -> None:
    flask_app, tokens = app
    strategy = st.one_of(*(operation.as_strategy(generation_mode=mode) for mode in GenerationMode))

    @settings(max_examples=CASES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=strategy, who=st.sampled_from(WHO))
    def fuzz(case: Any, who: str) -> None:
        headers = {"Authorization": f"Bearer {tokens[who]}"} if who in tokens else {}
        check(case.call(app=flask_app, headers=headers), f"{operation.label} as {who}: {case.as_curl_command()}")

    fuzz()
