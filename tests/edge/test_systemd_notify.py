"""The notify client on a real unix datagram socket, and the analysis loop feeding it on a short real run."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_app.config import parse
from edge_app.loop import SessionRunner
from edge_app.systemd_notify import Notifier
from edge_app.vision.models import load_models
from tests.edge.conftest import write_scenario


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(5.0)
    yield sock
    sock.close()


def received(sock: socket.socket) -> list[str]:
    """Every datagram waiting on ``sock`` (none blocks: the sender has finished)."""
    sock.setblocking(False)
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except BlockingIOError:
            return out


def test_no_notify_socket_is_no_notifier() -> None:
    assert Notifier.from_environ({}) is None
    assert Notifier.from_environ({"NOTIFY_SOCKET": "relative/path"}) is None


def test_ready_once_then_watchdog(notify_socket: socket.socket, tmp_path: Path) -> None:
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": str(tmp_path / "notify")})
    assert notifier is not None
    notifier.turn(False)  # the camera has not delivered yet: fed, not ready
    notifier.turn(True)
    notifier.turn(True)
    notifier.stopping()
    messages = received(notify_socket)
    assert messages[0] == "WATCHDOG=1"
    assert messages.count("READY=1\nSTATUS=analysing") == 1
    assert messages[-1] == "STOPPING=1\nSTATUS=stopping"


def test_abstract_address_and_a_missing_socket_do_not_raise(tmp_path: Path) -> None:
    assert Notifier("@invigil-test-none").address == "\0invigil-test-none"
    assert Notifier(str(tmp_path / "absent")).send("WATCHDOG=1") is False


def test_the_loop_says_ready_and_feeds_the_watchdog(models_dir: Path, scene: Any, tmp_path: Path,
                                                    notify_socket: socket.socket,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_scenario(tmp_path / "short", [scene("obama2.jpg", i) for i in range(15)])
    config = parse({"device_id": "unit-test", "data_dir": str(tmp_path / "data"),
                    "camera": {"type": "scenario", "path": str(folder)},
                    "analysis": {"calibration_seconds": 1}}, environ={})
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    runner = SessionRunner(config, lambda _message: None, load_models(models_dir, "int8", threads=1))
    stats = runner.run(threading.Event())
    assert stats.frames == 15
    messages = received(notify_socket)
    assert messages[0].startswith(("WATCHDOG=1", "READY=1"))
    assert "READY=1\nSTATUS=analysing" in messages and "WATCHDOG=1" in messages
    assert messages[-1] == "STOPPING=1\nSTATUS=stopping"


def test_the_loop_without_notify_socket_has_no_notifier(models_dir: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    config = parse({"device_id": "unit-test", "data_dir": str(tmp_path / "data"),
                    "camera": {"type": "scenario", "path": str(tmp_path)}}, environ={})
    assert SessionRunner(config, lambda _message: None, load_models(models_dir, "int8", threads=1)).notifier is None
