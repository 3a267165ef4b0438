"""The HTTP side's limits: the token bucket, per-route body sizes, 429 with Retry-After per caller."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from cloud_bridge.config import HttpConfig
from cloud_bridge.services import Services
from cloud_bridge.store import Store
from cloud_bridge.web import create_app
from cloud_bridge.web.limits import RateLimiter, Waiting, body_limits, largest_body, retry_after
from tests.bridge.parts import Clock


def test_a_bucket_lets_a_burst_through_then_its_rate() -> None:
    clock = Clock(100.0)
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)  # one request refills in 1/rate seconds
    assert limiter.take("b") == 0.0  # every key has its own bucket
    clock.advance(0.5)
    assert limiter.take("a") == 0.0 and limiter.take("a") == pytest.approx(0.5)
    clock.advance(60)
    assert [limiter.take("a") for _ in range(4)][-1] > 0  # refilled to the burst, never beyond


def test_the_oldest_keys_are_forgotten_past_the_cap() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=1, clock=clock, max_keys=2)
    assert limiter.take("a") == 0.0 and limiter.take("a") > 0
    limiter.take("b")
    limiter.take("c")  # "a" (least recently used) goes
    assert limiter.take("a") == 0.0 and limiter.take("c") > 0


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 5), (1.0, 0)])
def test_a_limiter_needs_a_positive_rate_and_burst(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate must be positive"):
        RateLimiter(rate, burst)


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert [retry_after(w) for w in (0.01, 1.0, 1.2, 30.0)] == ["1", "1", "2", "30"]


def test_waiting_slots_are_bounded() -> None:
    waiting = Waiting(2)
    assert waiting.enter() and waiting.enter() and not waiting.enter()
    waiting.leave()
    assert waiting.enter()


def test_body_limits_per_route() -> None:
    limits = body_limits(upload=2_000_000, photo=180_000)
    assert limits["api.upload_evidence"] == 2_000_000
    assert 240_000 < limits["api.create_session"] < 320_000  # the photo in base64 and the other fields
    assert limits["*"] <= 16_384 and largest_body(limits) == 2_000_000


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    store = Store(f"sqlite:///{tmp_path / 'bridge.db'}")
    built = Services.build(store)
    built.limits = {"upload": 300_000, "photo": 100_000}
    yield built
    store.close()


def client_of(services: Services, **http: float) -> FlaskClient:
    return create_app(services, {"TESTING": True}, HttpConfig(**http)).test_client()  # type: ignore[arg-type]


def test_a_token_over_its_rate_gets_429_with_retry_after(services: Services) -> None:
    client = client_of(services, rate_per_second=0.5, rate_burst=3)
    busy = {"Authorization": f"Bearer {services.tokens.create('proctor', 'busy', ['exam-1'])}"}
    calm = {"Authorization": f"Bearer {services.tokens.create('proctor', 'calm', ['exam-1'])}"}
    answers = [client.get("/api/v1/exams/exam-1/alerts", headers=busy) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert refused.get_json()["error"] == "rate_limited" and refused.headers["Retry-After"] == "2"
    assert client.get("/api/v1/exams/exam-1/alerts", headers=calm).status_code == 200  # another token
    assert all(client.get("/healthz").status_code == 200 for _ in range(5))  # monitoring is never limited


def test_unauthenticated_callers_are_limited_too(services: Services) -> None:
    client = client_of(services, rate_per_second=0.5, rate_burst=2)
    codes = [client.post("/api/v1/evidence", data=b"x", headers={"X-Invigil-Device": "unit-1"}).status_code
             for _ in range(3)]
    assert codes == [400, 400, 429]  # one unit's uploads share a bucket
    other = client.post("/api/v1/evidence", data=b"x", headers={"X-Invigil-Device": "unit-2"})
    assert other.status_code == 400
    assert [client.get("/api/v1/exams/exam-1/alerts").status_code for _ in range(3)] == [401, 401, 429]


def test_each_route_reads_no_more_than_its_own_limit(services: Services) -> None:
    client = client_of(services)
    token = {"Authorization": f"Bearer {services.tokens.create('client', 'pc')}"}
    limits = body_limits(300_000, 100_000)
    body = b"\xff\xd8\xff" + bytes(limits["api.create_session"] + 10)  # fits an upload, not a session
    session = client.post("/api/v1/sessions", data=body, content_type="application/json", headers=token)
    assert session.status_code == 413 and session.is_json
    upload = client.post("/api/v1/evidence", data=body, headers={"X-Invigil-Device": "unit-1"})
    assert upload.status_code == 409  # read, checked: no event carries its digest
    ended = client.post("/api/v1/sessions/0123456789abcdef0123456789abcdef/end", data=bytes(20_000), headers=token)
    assert ended.status_code == 413
