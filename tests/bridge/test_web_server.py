"""The bridge's HTTP server as ``serve`` builds it (``http_server``: waitress on a loopback port): bodies
refused before they are read, live pages and event streams that leave threads for the API, the cookie's
Secure flag behind a trusted TLS proxy."""

from __future__ import annotations

import http.client
import json
import os
import select
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloud_bridge.config import HttpConfig
from cloud_bridge.services import Services
from cloud_bridge.store import Store
from cloud_bridge.web import create_app, http_server, stop_server

UPLOAD_LIMIT = 300_000
CHUNK = b"\xff" * 65_536


class Running:
    """``http_server`` for the app of ``services`` with ``http``, ``run()`` in a thread."""

    def __init__(self, services: Services, http: HttpConfig) -> None:
        self.app = create_app(services, None, http)
        self.server: Any = http_server(self.app)
        self.port = int(self.server.effective_port)
        self.thread = threading.Thread(target=self.server.run, name="waitress", daemon=True)
        self.thread.start()

    def connection(self, timeout: float = 10.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def get(self, path: str, headers: dict[str, str] | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
        connection = self.connection(timeout)
        try:
            connection.request("GET", path, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def stop(self) -> None:
        stop_server(self.server, self.app, timeout=10.0)
        self.thread.join(10.0)
        assert not self.thread.is_alive()


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    store = Store(f"sqlite:///{tmp_path / 'bridge.db'}")
    built = Services.build(store)
    built.limits = {"upload": UPLOAD_LIMIT, "photo": 100_000}
    yield built
    store.close()


@pytest.fixture
def temp_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where waitress puts request bodies too big for memory (its temporary files, unlinked at once)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def temp_bytes(folder: Path) -> int:
    """Bytes in files under ``folder`` that this process holds open (deleted ones included) or that are listed."""
    total = sum(path.stat().st_size for path in folder.iterdir())
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
            if target.startswith(str(folder)) and target.endswith("(deleted)"):
                total += os.stat(f"/proc/self/fd/{name}").st_size
        except OSError:  # closed meanwhile
            continue
    return total


def answer_within(sock: socket.socket, seconds: float) -> bytes:
    """What the server has answered within ``seconds`` (b"" if nothing)."""
    readable, _, _ = select.select([sock], [], [], seconds)
    if not readable:
        return b""
    try:
        return sock.recv(65_536)
    except ConnectionResetError:
        return b"(reset)"


def test_an_oversized_upload_is_refused_from_its_headers_before_it_is_read(services: Services,
                                                                           temp_folder: Path) -> None:
    running = Running(services, HttpConfig(port=0, threads=4))  # type: ignore[call-arg]
    sock = socket.create_connection(("127.0.0.1", running.port), timeout=10)
    try:
        sock.sendall(b"POST /api/v1/evidence HTTP/1.1\r\nHost: bridge\r\nX-Invigil-Device: unit-1\r\n"
                     b"Content-Type: image/jpeg\r\nContent-Length: 1000000000\r\n\r\n" + CHUNK)
        answer = answer_within(sock, 5.0)  # before the body: the server does not wait for a gigabyte
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        sent, closed = 0, False
        try:
            while sent < 8_000_000:  # what a client goes on sending is never stored
                sock.sendall(CHUNK)
                sent += len(CHUNK)
        except OSError:
            closed = True
        assert closed or sent < 8_000_000 or answer_within(sock, 2.0) in (b"", b"(reset)")
        assert temp_bytes(temp_folder) == 0
    finally:
        sock.close()
        running.stop()


def test_a_chunked_upload_is_cut_off_at_the_limit(services: Services, temp_folder: Path) -> None:
    running = Running(services, HttpConfig(port=0, threads=4))  # type: ignore[call-arg]
    sock = socket.create_connection(("127.0.0.1", running.port), timeout=10)
    sent, biggest, answer = 0, 0, b""
    try:
        sock.sendall(b"POST /api/v1/evidence HTTP/1.1\r\nHost: bridge\r\nX-Invigil-Device: unit-1\r\n"
                     b"Content-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            while sent < 20_000_000 and not answer:
                sock.sendall(b"%x\r\n" % len(CHUNK) + CHUNK + b"\r\n")
                sent += len(CHUNK)
                biggest = max(biggest, temp_bytes(temp_folder))
                answer = answer_within(sock, 0.0)
        except OSError:  # the server closed the connection
            answer = answer or answer_within(sock, 2.0) or b"(closed)"
        assert answer.startswith((b"HTTP/1.1 413", b"(reset)", b"(closed)")), answer[:200]
        assert sent < 20_000_000  # refused on the way, not after everything
        assert biggest <= UPLOAD_LIMIT + 2 * len(CHUNK)  # at most the limit ever reached the disk
    finally:
        sock.close()
        running.stop()


def open_stream(running: Running, token: str) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    connection = running.connection()
    connection.request("GET", "/api/v1/exams/exam-1/stream", headers={"Authorization": f"Bearer {token}"})
    return connection, connection.getresponse()


def test_more_event_streams_than_threads_leave_the_api_answering(services: Services) -> None:
    running = Running(services, HttpConfig(port=0, threads=4))  # type: ignore[call-arg]  # 2 may wait
    token = services.tokens.create("proctor", "desk", ["exam-1"])
    client = {"Authorization": f"Bearer {services.tokens.create('client', 'pc')}"}
    session = services.sessions.create("exam-1", "cand-1", b"\xff\xd8\xff" + bytes(100))
    streams = []
    try:
        for _ in range(8):  # twice as many viewers as server threads
            streams.append(open_stream(running, token))
        statuses = [response.status for _, response in streams]
        assert statuses.count(200) == 2 and statuses.count(503) == 6
        refused = next(response for _, response in streams if response.status == 503)
        assert refused.getheader("Retry-After") == "10" and json.loads(refused.read())["error"] == "busy"
        for _, response in streams:
            if response.status == 200:
                assert response.readline() == b"event: sessions\n"  # live
        began = time.monotonic()
        status, body = running.get(f"/api/v1/sessions/{session.session_id}", client, timeout=5)
        assert status == 200 and json.loads(body)["candidate_id"] == "cand-1"
        assert time.monotonic() - began < 2.0
        # a viewer that leaves frees its slot (noticed within the stream's health interval)
        connection, leaving = next(s for s in streams if s[1].status == 200)
        leaving.close()
        connection.close()
        deadline, reopened = time.monotonic() + 15, 503
        while reopened != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
            extra_connection, extra = open_stream(running, token)
            streams.append((extra_connection, extra))
            reopened = extra.status
        assert reopened == 200
    finally:
        for connection, response in streams:
            response.close()
            connection.close()
        running.stop()


def test_more_live_pages_than_threads_leave_the_api_answering(services: Services) -> None:
    running = Running(services, HttpConfig(port=0, threads=4, poll_wait=20))  # type: ignore[call-arg]
    token = services.tokens.create("proctor", "desk", ["exam-1"])
    headers = {"Authorization": f"Bearer {token}"}
    first = json.loads(running.get("/proctor/exam-1/alerts", headers)[1])
    query = f"after={first['cursor']}&wait=20&seen={first['sessions_tag']}"
    answers: list[tuple[float, dict[str, Any]]] = []

    def page() -> None:  # what the page's script does: a poll that waits for news
        began = time.monotonic()
        status, body = running.get(f"/proctor/exam-1/alerts?{query}", headers, timeout=30)
        assert status == 200
        answers.append((time.monotonic() - began, json.loads(body)))

    pages = [threading.Thread(target=page, daemon=True) for _ in range(12)]
    try:
        for thread in pages:
            thread.start()
        time.sleep(1.0)
        began = time.monotonic()
        assert running.get("/healthz", timeout=5)[0] == 200
        assert running.get("/api/v1/exams/exam-1/alerts", headers, timeout=5)[0] == 200
        assert time.monotonic() - began < 2.0
        assert len(answers) >= 10  # all but the 2 allowed to wait were answered at once
        assert all(took < 2.0 and not body["waited"] for took, body in answers)
        services.sessions.create("exam-1", "cand-2", b"\xff\xd8\xff" + bytes(100))
        services.feed.notify()  # a new candidate: the waiting pages hear of it at once
        for thread in pages:
            thread.join(10)
        assert len(answers) == 12
        woken = [body for _, body in answers if body["waited"]]
        assert len(woken) == 2 and all(len(body["sessions"]) == 1 for body in woken)
    finally:
        running.stop()


@pytest.mark.parametrize(("proxy", "forwarded", "secure"), [
    (None, "https", False),  # no proxy is trusted: a client's own X-Forwarded-Proto means nothing
    ("127.0.0.1", "https", True),  # the TLS proxy in front says the page came over TLS
    ("127.0.0.1", "http", False),
    ("10.9.9.9", "https", False),  # a proxy elsewhere is trusted, not this caller
])
def test_the_cookie_is_secure_behind_a_trusted_tls_proxy(services: Services, proxy: str | None, forwarded: str,
                                                         secure: bool) -> None:
    running = Running(services, HttpConfig(port=0, threads=4, trusted_proxy=proxy))  # type: ignore[call-arg]
    token = services.tokens.create("proctor", "desk", ["exam-1"])
    try:
        connection = running.connection()
        connection.request("GET", f"/proctor/exam-1?token={token}", headers={"X-Forwarded-Proto": forwarded})
        response = connection.getresponse()
        response.read()
        connection.close()
        assert response.status == 200
        cookie = response.getheader("Set-Cookie", "")
        assert cookie.startswith(f"invigil_token={token};") and "Path=/proctor/exam-1" in cookie
        assert ("; Secure" in cookie) == secure and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    finally:
        running.stop()
