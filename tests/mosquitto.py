"""A real Mosquitto broker for tests, on a free loopback port, that a test can stop and restart.

Persistence is on with its own folder, so a restart keeps retained messages and the queued QoS 1
messages of persistent sessions. ``LinkCutter`` is a loopback TCP relay in front of the broker that can
cut every connection without an MQTT DISCONNECT (a lost network) or swallow what the broker sends back
(PUBACKs that never arrive).
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.need import need
from tools.mosquitto import INSTALL, BrokerProcess, anonymous_conf, free_port
from tools.mosquitto import mosquitto_binary as find_binary

WAIT_SECONDS = 10.0


def mosquitto_binary() -> str:
    """The broker's path; skips the test when Mosquitto is not installed (it lives in sbin on Debian)."""
    binary = find_binary()
    need(binary is not None, f"mosquitto is not installed: {INSTALL}")
    assert binary is not None
    return binary


def wait_for(condition: Callable[[], object], seconds: float = WAIT_SECONDS, what: str = "condition") -> None:
    """Poll ``condition()`` until true; fails the test naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {seconds:g} s waiting for {what}")


class Mosquitto(BrokerProcess):
    """A broker in ``workdir``: ``start()``, ``stop()`` (SIGTERM: persistence is saved), ``kill()``,
    ``restart()``; same port throughout (tools/mosquitto.py)."""

    def __init__(self, workdir: Path, conf_text: str | None = None) -> None:
        """``conf_text``: a whole configuration to run instead of the default anonymous one; the port is its
        first ``listener``'s, and as root it needs a ``user`` line (the temp folder is not the mosquitto user's)."""
        binary = mosquitto_binary()
        self.workdir = workdir
        conf = workdir / "mosquitto.conf"
        (workdir / "data").mkdir(parents=True, exist_ok=True)
        if conf_text is not None:
            listener = re.search(r"^listener\s+(\d+)", conf_text, re.MULTILINE)
            if listener is None:
                raise ValueError("conf_text has no `listener <port>` line")
            port = int(listener.group(1))
            conf.write_text(conf_text)
        else:
            port = free_port()
            conf.write_text(anonymous_conf(port, workdir / "data"))
        super().__init__(conf, port, workdir / "mosquitto.log", binary)


class LinkCutter:
    """A loopback TCP relay to ``target_port``: ``cut()`` drops every connection, ``hold_replies`` swallows
    what the broker sends (the client's PUBACKs never arrive)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.hold_replies = False
        self.accepted = 0  # connections relayed so far (a client's connection attempts)
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
            self.accepted += 1
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
