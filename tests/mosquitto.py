"""A real Mosquitto broker for tests, on a free loopback port, that a test can stop and restart.

Persistence is on with its own folder, so a restart keeps retained messages and the queued QoS 1
messages of persistent sessions. ``LinkCutter`` is a loopback TCP relay in front of the broker that can
cut every connection without an MQTT DISCONNECT (a lost network) or swallow what the broker sends back
(PUBACKs that never arrive).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

INSTALL = "apt-get install -y mosquitto"
WAIT_SECONDS = 10.0


def mosquitto_binary() -> str:
    """The broker's path; skips the test when Mosquitto is not installed (it lives in sbin on Debian)."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    binary = shutil.which("mosquitto", path=search)
    if binary is None:
        pytest.skip(f"mosquitto is not installed: {INSTALL}")
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], object], seconds: float = WAIT_SECONDS, what: str = "condition") -> None:
    """Poll ``condition()`` until true; fails the test naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {seconds:g} s waiting for {what}")


class Mosquitto:
    """``start()``, ``stop()`` (SIGTERM: persistence is saved), ``kill()``, ``restart()``; same port throughout."""

    def __init__(self, workdir: Path) -> None:
        self.binary = mosquitto_binary()
        self.workdir = workdir
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        (workdir / "data").mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {workdir / 'data'}/\n"
            f"user {getpass.getuser()}\n"  # as root, stay root (the temp folder is not the mosquitto user's)
            "log_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
        )
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self._process is not None:
            raise RuntimeError("broker already running")
        with self.log.open("ab") as output:  # the child keeps its own copy of the descriptor
            self._process = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=output, stderr=output)
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                raise RuntimeError(f"mosquitto exited at start: {self._log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"mosquitto did not accept connections on port {self.port} within {WAIT_SECONDS:g} s")

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(WAIT_SECONDS)
        self._process = None

    def kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(WAIT_SECONDS)
            self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""


class LinkCutter:
    """A loopback TCP relay to ``target_port``: ``cut()`` drops every connection, ``hold_replies`` swallows
    what the broker sends (the client's PUBACKs never arrive)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.hold_replies = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = int(self._listener.getsockname()[1])
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def cut(self) -> None:
        """Close every relayed connection at once, with no MQTT DISCONNECT on either side."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self._closed.set()
        self._accepter.join(WAIT_SECONDS)
        self._listener.close()
        self.cut()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                broker = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
            except OSError:
                client.close()
                continue
            broker.settimeout(None)
            client.settimeout(None)
            with self._lock:
                self._sockets += [client, broker]
            threading.Thread(target=self._pump, args=(client, broker, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(broker, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, replies: bool) -> None:
        try:
            while data := source.recv(65536):
                if not (replies and self.hold_replies):
                    sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
