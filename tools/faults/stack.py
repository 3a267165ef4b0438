"""The deployed stack for the fault suite, provisioned the way staff do it and run as processes.

``FaultStack(root).prepare(devices)`` registers the units (``python -m cloud_bridge device add``), takes the
bridge's public key (``key``) and a client token (``token create``), and writes Mosquitto's config with its
dynamic-security accounts (``broker-config``, a proctor account too). ``start_broker()``, ``start_bridge()``
(``python -m cloud_bridge serve``) and ``start_unit()`` (tools/faults/unit.py) run the programs; the bridge
and each unit reach the broker through a :class:`~tools.faults.proxy.Proxy` whose network a fault can cut.
"""

from __future__ import annotations

import base64
import getpass
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from cloud_bridge.broker import new_password
from edge_app.atomic import write_bytes_atomic
from edge_app.protocol.keys import load_or_create_key, public_pem
from tools.faults.proxy import Proxy
from tools.mosquitto import BrokerProcess, free_port
from tools.processes import start_bridge, stop_process, tail, toml_value

ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 30.0
PHOTO = b"\xff\xd8\xff\xe0" + bytes(range(256)) + b"\xff\xd9"  # the bridge only forwards the enrolled photo
UNIT_LINK = {"keepalive": 5, "backoff_min": 0.2, "backoff_max": 2.0}  # as the demo's unit; the rest as deployed



class UnitProcess:
    """A running tools/faults/unit.py: its progress as it reports it on stdout."""

    def __init__(self, args: list[str], log: Path) -> None:
        with log.open("ab") as err:
            self.process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=err)
        self.written = self.refused = 0  # events the unit accepted, and refused (its outbox could not take them)
        self.progress = 0  # events the unit has tried to write so far
        self.paired = self.produced = False
        self.error: str | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in iter(self.process.stdout.readline, b""):
            try:
                line: dict[str, Any] = json.loads(raw)
            except ValueError:
                continue  # not one of the unit's progress lines
            self.written += "written" in line
            self.refused += "refused" in line
            self.progress = max(self.progress, line.get("written", 0), line.get("refused", 0))
            self.paired = self.paired or "paired" in line
            self.produced = self.produced or "produced" in line
            self.error = line.get("error", self.error)

    def wait_written(self, count: int, seconds: float = WAIT_SECONDS) -> None:
        """Until the unit has tried to write ``count`` events (it stopped, or ``seconds``: RuntimeError)."""
        deadline = time.monotonic() + seconds
        while self.progress < count:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the unit stopped at {self.progress} events (waiting for {count})")
            time.sleep(0.01)

    def wait_paired(self) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while not self.paired:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the unit did not pair: {self.error or 'no answer'}")
            time.sleep(0.02)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(WAIT_SECONDS)
        self._reader.join(WAIT_SECONDS)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(WAIT_SECONDS)
            except subprocess.TimeoutExpired:
                self.kill()
        self._reader.join(WAIT_SECONDS)


class FaultStack:
    def __init__(self, root: Path, workers: int = 2, link: dict[str, float] | None = None) -> None:
        self.root, self.workers = root.resolve(), workers
        self.link = {**UNIT_LINK, **(link or {})}  # the units' [link.broker] settings
        self.logs, self.secrets = self.root / "logs", self.root / "secrets"
        self.broker_port = 0  # chosen just before the broker's config is written (a free port is free only so long)
        self.url = ""  # the bridge's HTTP address, read from its log at each start (it takes any free port)
        self.client_prefix = "bridge-faults"  # each fault has a broker of its own
        self.db = self.root / "bridge.db"
        self.bridge_proxy = Proxy(0)  # its target is the broker's port, set in prepare()
        self.unit_proxies: dict[str, Proxy] = {}
        self.broker: BrokerProcess | None = None
        self.bridge: subprocess.Popen[bytes] | None = None
        self.units: list[UnitProcess] = []
        self.token = ""
        self.passwords: dict[str, str] = {}

    # -- provisioning ------------------------------------------------------------------------------------

    def cli(self, *args: str) -> str:
        """``python -m cloud_bridge ARGS --config bridge.toml``; its stdout (RuntimeError naming it on failure)."""
        command = [sys.executable, "-m", "cloud_bridge", *args, "--config", str(self.root / "bridge.toml")]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command[2:])}: exit {done.returncode}: {done.stderr.strip()[-500:]}")
        return done.stdout

    def prepare(self, devices: list[str]) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        for name in ("bridge", "proctor"):
            self.passwords[name] = new_password()
            write_bytes_atomic(self.secrets / f"{name}.mqtt", (self.passwords[name] + "\n").encode(), mode=0o600)
        (self.root / "bridge.toml").write_text("\n".join([
            f"database_url = {toml_value('sqlite:///' + str(self.db))}",
            f"key_file = {toml_value(self.secrets / 'bridge.key')}",
            "[mqtt]", 'host = "127.0.0.1"', f"port = {self.bridge_proxy.port}", 'username = "bridge"',
            f"password_file = {toml_value(self.secrets / 'bridge.mqtt')}", f"workers = {self.workers}",
            "keepalive = 5",
            f'client_prefix = "{self.client_prefix}"',
            "[http]", 'host = "127.0.0.1"', "port = 0", ""]))
        for device in devices:
            data = self.unit_dir(device) / "data"
            data.mkdir(parents=True, exist_ok=True)
            pub = self.unit_dir(device) / "device.pub"
            pub.write_text(public_pem(load_or_create_key(data / "device.key")))
            self.cli("device", "add", device, "--public-key", str(pub),
                     "--password-out", str(self.unit_dir(device) / "mqtt.password"))
            self.passwords[device] = (self.unit_dir(device) / "mqtt.password").read_text().strip()
        (self.root / "bridge.pub").write_text(self.cli("key"))
        self.token = self.cli("token", "create", "--role", "client", "--label", "fault suite").strip()
        self.broker_port = self.bridge_proxy.target_port = free_port()
        self.cli("broker-config", "--out", str(self.root / "broker"), "--port", str(self.broker_port),
                 "--proctor", f"proctor:{self.secrets / 'proctor.mqtt'}", "--user", getpass.getuser())
        self.broker = BrokerProcess(self.root / "broker" / "mosquitto.conf", self.broker_port,
                                    self.logs / "mosquitto.log")
        self.bridge_proxy.start()

    def unit_dir(self, device: str) -> Path:
        return self.root / "units" / device

    # -- the bridge and the broker -----------------------------------------------------------------------

    def start_broker(self) -> None:
        assert self.broker is not None, "prepare() first"
        self.broker.start()

    def start_bridge(self) -> None:
        self.bridge, self.url = start_bridge(self.root / "bridge.toml", self.logs / "bridge.log", ROOT, WAIT_SECONDS)

    def kill_bridge(self) -> None:
        assert self.bridge is not None
        self.bridge.send_signal(signal.SIGKILL)
        self.bridge.wait(WAIT_SECONDS)

    def create_session(self, exam: str, candidate: str) -> str:
        """A session made through the HTTP API as the PC client makes it; its pairing code."""
        body = json.dumps({"exam_id": exam, "candidate_id": candidate,
                           "photo": base64.b64encode(PHOTO).decode()}).encode()
        request = urllib.request.Request(self.url + "/api/v1/sessions", data=body, method="POST", headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(json.loads(response.read())["pairing_code"])

    # -- units -------------------------------------------------------------------------------------------

    def start_unit(self, device: str, events: int, rate: float, pair_code: str | None = None,
                   skew: list[tuple[int, float]] | None = None, full_flag: Path | None = None) -> UnitProcess:
        proxy = self.unit_proxies.get(device)
        if proxy is None:
            proxy = self.unit_proxies[device] = Proxy(self.broker_port).start()
        config = {"device_id": device, "data_dir": str(self.unit_dir(device) / "data"),
                  "bridge_key": str(self.root / "bridge.pub"), "events": events, "rate": rate, "pair_code": pair_code,
                  "skew": skew or [], "full_flag": str(full_flag) if full_flag else None,
                  "broker": {"host": "127.0.0.1", "port": proxy.port, "username": device,
                             "password_file": str(self.unit_dir(device) / "mqtt.password"), **self.link}}
        path = self.unit_dir(device) / "unit.json"
        path.write_text(json.dumps(config))
        unit = UnitProcess([sys.executable, "-m", "tools.faults.unit", str(path)], self.logs / f"{device}.log")
        self.units.append(unit)
        return unit

    def outbox_path(self, device: str) -> Path:
        return self.unit_dir(device) / "data" / "outbox.db"

    # -- the end -----------------------------------------------------------------------------------------

    def stop(self) -> None:
        for unit in self.units:
            unit.stop()
        stop_process(self.bridge, WAIT_SECONDS)
        if self.broker is not None:
            self.broker.stop()
        for proxy in [self.bridge_proxy, *self.unit_proxies.values()]:
            proxy.close()

    def tail(self, name: str) -> str:
        return tail(self.logs / name)
