"""A Mosquitto process of our own, on a loopback port, that can be stopped, killed and restarted.

Used by the demo, the benchmarks and (through tests/mosquitto.py) the tests. The config is a file written
beforehand (e.g. by ``cloud_bridge.broker.write_broker_files``); SIGTERM makes the broker save its
persistence file, so a ``restart()`` keeps retained messages and queued QoS 1 messages.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tools.processes import stop_process

INSTALL = "apt-get install -y mosquitto"
WAIT_SECONDS = 10.0


def mosquitto_binary() -> str | None:
    """The broker's path, or None (Debian installs it in sbin, often not on a user's PATH)."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    return shutil.which("mosquitto", path=search)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def anonymous_conf(port: int, data_dir: Path) -> str:
    """A loopback broker without accounts (tests and benchmarks); queues as large as the generated config's."""
    return (f"listener {port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {data_dir}/\n"
            "max_queued_messages 1000000\n"  # as cloud_bridge.broker writes it: a slow consumer loses nothing
            f"user {getpass.getuser()}\n"  # as root, stay root (a temp folder is not the mosquitto user's)
            "log_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\n")


class BrokerProcess:
    """``start()``, ``stop()`` (SIGTERM: persistence is saved), ``kill()``, ``restart()``; same port throughout."""

    def __init__(self, conf: Path, port: int, log: Path, binary: str | None = None) -> None:
        found = binary or mosquitto_binary()
        if found is None:
            raise RuntimeError(f"mosquitto is not installed: {INSTALL}")
        self.binary, self.conf, self.port, self.log = found, conf, port, log
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The running broker's process id (for signals such as SIGHUP)."""
        if self._process is None:
            raise RuntimeError("broker not running")
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        if self._process is not None:
            raise RuntimeError("broker already running")
        with self.log.open("ab") as output:  # the child keeps its own copy of the descriptor
            self._process = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=output, stderr=output)
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                raise RuntimeError(f"mosquitto exited at start: {self.log_tail()}")
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
        stop_process(self._process, WAIT_SECONDS)
        self._process = None

    def kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(WAIT_SECONDS)
            self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
