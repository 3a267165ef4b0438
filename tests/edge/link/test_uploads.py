"""Evidence uploads against a real HTTP server on loopback: 409 (event not there yet) and server errors are
retried, another 4xx and a missing file are dropped, an unreachable bridge is retried once it is up, and the
queue (a SQLite file) survives a restart of the uploader; retries are timed on the monotonic clock."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import threading
import time
import types
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from edge_app.link import uploads
from edge_app.link.uploads import EvidenceUploader
from tests.mosquitto import free_port, wait_for

DEVICE = "unit-7"
JPEG = b"\xff\xd8\xff\xe0" + b"snapshot" * 8
real_time = time.time  # the machine's clock, before a test steps the unit's


class Bridge:
    """A tiny HTTP server that answers each POST with the next scripted status (the last one repeats)."""

    def __init__(self, statuses: list[int], port: int = 0) -> None:
        self.statuses = list(statuses)
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []  # method, path, headers, body
        self._lock = threading.Lock()
        bridge = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with bridge._lock:
                    bridge.requests.append(("POST", self.path, dict(self.headers.items()), body))
                    status = bridge.statuses.pop(0) if len(bridge.statuses) > 1 else bridge.statuses[0]
                reply = b'{"ok":true}' if status < 300 else b'{"error":"scripted"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


@pytest.fixture
def servers() -> Iterator[list[Bridge]]:
    started: list[Bridge] = []
    yield started
    for server in started:
        server.close()


@pytest.fixture
def uploaders() -> Iterator[list[EvidenceUploader]]:
    started: list[EvidenceUploader] = []
    yield started
    for uploader in started:
        uploader.stop()


def serve(servers: list[Bridge], statuses: list[int], port: int = 0) -> Bridge:
    server = Bridge(statuses, port)
    servers.append(server)
    return server


def uploader_for(uploaders: list[EvidenceUploader], db: Path, url: str, start: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> EvidenceUploader:
    uploader = EvidenceUploader(db, url, DEVICE, clock)
    uploaders.append(uploader)
    if start:
        uploader.start()
    return uploader


def snapshot(folder: Path, name: str, data: bytes = JPEG) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def test_409_until_the_event_is_stored_then_201(tmp_path: Path, servers: list[Bridge],
                                                uploaders: list[EvidenceUploader]) -> None:
    bridge = serve(servers, [409, 201])
    uploader = uploader_for(uploaders, tmp_path / "uploads.db", bridge.url + "/")
    path = snapshot(tmp_path, "a.jpg")
    uploader.add(path)
    wait_for(lambda: uploader.pending() == 0, what="the upload to be accepted after a retry")
    assert bridge.count() == 2 and uploader.uploaded == 1 and uploader.failed == 1
    for method, url_path, headers, body in bridge.requests:
        assert (method, url_path, body) == ("POST", "/api/v1/evidence", JPEG)
        assert headers["Content-Type"] == "image/jpeg" and headers["X-Invigil-Device"] == DEVICE
    assert path.read_bytes() == JPEG  # the snapshot stays on the unit, under the evidence quota


def test_a_server_error_is_retried(tmp_path: Path, servers: list[Bridge], uploaders: list[EvidenceUploader]) -> None:
    bridge = serve(servers, [503, 500, 200])
    uploader = uploader_for(uploaders, tmp_path / "uploads.db", bridge.url)
    uploader.add(snapshot(tmp_path, "a.jpg"))
    wait_for(lambda: uploader.pending() == 0, what="the upload after two server errors")
    assert bridge.count() == 3 and uploader.uploaded == 1 and uploader.failed == 2


def test_a_refused_upload_is_dropped(tmp_path: Path, servers: list[Bridge],
                                     uploaders: list[EvidenceUploader]) -> None:
    bridge = serve(servers, [400])
    uploader = uploader_for(uploaders, tmp_path / "uploads.db", bridge.url)
    path = snapshot(tmp_path, "bad.jpg", b"not a jpeg")
    uploader.add(path)
    wait_for(lambda: uploader.pending() == 0, what="the refused upload to be dropped")
    assert bridge.count() == 1 and uploader.uploaded == 0 and uploader.failed == 0
    assert path.exists()


def test_a_missing_file_is_dropped_without_a_request(tmp_path: Path, servers: list[Bridge],
                                                     uploaders: list[EvidenceUploader]) -> None:
    bridge = serve(servers, [201])
    uploader = uploader_for(uploaders, tmp_path / "uploads.db", bridge.url)
    uploader.add(tmp_path / "removed-by-retention.jpg")
    uploader.add(snapshot(tmp_path, "there.jpg"))
    wait_for(lambda: uploader.pending() == 0, what="both rows to leave the queue")
    assert bridge.count() == 1 and uploader.uploaded == 1


def test_an_unreachable_bridge_is_retried_once_it_is_up(tmp_path: Path, servers: list[Bridge],
                                                        uploaders: list[EvidenceUploader]) -> None:
    port = free_port()
    uploader = uploader_for(uploaders, tmp_path / "uploads.db", f"http://127.0.0.1:{port}")
    uploader.add(snapshot(tmp_path, "a.jpg"))
    wait_for(lambda: uploader.failed >= 1, what="a failed attempt while nothing listens")
    assert uploader.pending() == 1 and uploader.uploaded == 0
    bridge = serve(servers, [201], port)
    wait_for(lambda: uploader.pending() == 0, what="the upload once the bridge is up")
    assert bridge.count() == 1 and bridge.requests[0][3] == JPEG and uploader.uploaded == 1


def test_the_queue_survives_a_restart(tmp_path: Path, servers: list[Bridge],
                                      uploaders: list[EvidenceUploader]) -> None:
    db = tmp_path / "state" / "uploads.db"  # the folder is created
    first = uploader_for(uploaders, db, "http://127.0.0.1:9", start=False)  # never started: a power cut before
    paths = [snapshot(tmp_path, f"{n}.jpg", JPEG + bytes([n])) for n in range(3)]
    for path in paths:
        first.add(path)
    first.add(paths[0])  # queued once
    assert first.pending() == 3
    first.stop()
    uploaders.remove(first)

    bridge = serve(servers, [201])
    second = uploader_for(uploaders, db, bridge.url)
    wait_for(lambda: second.pending() == 0, what="the queued uploads after the restart")
    assert sorted(body for *_, body in bridge.requests) == sorted(path.read_bytes() for path in paths)
    assert second.uploaded == 3


def test_stop_while_the_bridge_hangs_ends_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bridge that takes the connection and never answers: stop() returns, and the request failing later
    (after the queue was closed) ends the thread without an error."""
    crashes: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", crashes.append)
    with socket.create_server(("127.0.0.1", 0)) as silent:
        silent.settimeout(10)
        uploader = EvidenceUploader(tmp_path / "uploads.db", f"http://127.0.0.1:{silent.getsockname()[1]}", DEVICE)
        uploader.add(snapshot(tmp_path, "a.jpg"))
        uploader.start()
        connection, _ = silent.accept()  # the request is on its way and will not be answered
        uploader.stop(timeout=0.2)
        assert uploader.running  # still inside the request
        connection.close()
        wait_for(lambda: not uploader.running, what="the upload thread to end")
    assert crashes == [] and uploader.uploaded == 0


class Wall:
    """The unit's wall clock, which the network may set (step) at any moment; ``back`` seconds behind the
    machine's."""

    def __init__(self) -> None:
        self.back = 0.0

    def time(self) -> float:
        return real_time() - self.back


def tries(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db)) as reader:
        return int(reader.execute("SELECT COALESCE(MAX(tries), 0) FROM uploads").fetchone()[0])


def test_a_wall_clock_stepped_back_does_not_hold_back_a_retry(
        tmp_path: Path, servers: list[Bridge], uploaders: list[EvidenceUploader],
        monkeypatch: pytest.MonkeyPatch) -> None:
    wall = Wall()
    monkeypatch.setattr(uploads, "time", types.SimpleNamespace(time=wall.time, monotonic=time.monotonic))
    bridge = serve(servers, [503, 201])
    uploader = uploader_for(uploaders, tmp_path / "uploads.db", bridge.url)
    uploader.add(snapshot(tmp_path, "a.jpg"))
    wait_for(lambda: tries(tmp_path / "uploads.db") == 1, what="the failed attempt to be rescheduled")
    wall.back = 365 * 86400.0  # the network sets the clock back a year
    wait_for(lambda: uploader.pending() == 0, what="the retry a second later")
    assert bridge.count() == 2 and uploader.uploaded == 1


def test_a_restart_on_a_clock_that_is_not_set_yet_retries_at_once(
        tmp_path: Path, servers: list[Bridge], uploaders: list[EvidenceUploader],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A retry planned in the last run is due in this one, whatever either clock reads now (a Pi boots in
    1970 and its monotonic clock starts again)."""
    db = tmp_path / "uploads.db"
    failing = serve(servers, [503])
    first = uploader_for(uploaders, db, failing.url, clock=lambda: 1e12)  # long after the boot before
    first.add(snapshot(tmp_path, "a.jpg"))
    wait_for(lambda: tries(db) == 1, what="the failed attempt to be rescheduled")
    first.stop()
    uploaders.remove(first)

    wall = Wall()
    wall.back = real_time() - 3 * 86400.0  # 1970-01-04
    monkeypatch.setattr(uploads, "time", types.SimpleNamespace(time=wall.time, monotonic=time.monotonic))
    bridge = serve(servers, [201])
    second = uploader_for(uploaders, db, bridge.url)
    wait_for(lambda: second.pending() == 0, what="the queued upload after the restart")
    assert bridge.count() == 1 and second.uploaded == 1
