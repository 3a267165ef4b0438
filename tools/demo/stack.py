"""The whole system on one machine, the way it is deployed: a Mosquitto with per-account passwords and the
ACL the bridge generates, the bridge (``python -m cloud_bridge serve``), and a camera unit
(``python -m edge_app run``) playing a rendered scenario as its camera, all on loopback ports.

``Stack(root).prepare(scenario)`` provisions everything under ``root`` the way staff would (bridge key,
API tokens, the unit's key registered with a new MQTT password, broker files); then ``start_broker()``,
``start_bridge()`` and ``start_edge()`` run the three programs as child processes. ``prepare_fleet(scenario)``
provisions for a unit that enrols itself instead (the broker told of accounts at once; staff's steps through
``cli()``; tests/e2e/test_appliance.py).
"""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
from pathlib import Path

from cloud_bridge.broker import BrokerUser, hash_password, new_password, write_broker_files
from cloud_bridge.ingest import Ingestor
from cloud_bridge.store import Store
from cloud_bridge.tokens import Tokens
from edge_app.atomic import write_bytes_atomic
from edge_app.protocol.keys import load_or_create_key, public_pem
from tools.mosquitto import BrokerProcess, free_port
from tools.processes import start_bridge, stop_process, tail, toml_value

ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 30.0


def _secret(path: Path, text: str) -> Path:
    write_bytes_atomic(path, (text + "\n").encode(), mode=0o600)
    return path



class Stack:
    def __init__(self, root: Path, device_id: str = "demo-unit-1", workers: int = 2,
                 proctor_exam: str = "demo-exam") -> None:
        self.root, self.device_id, self.workers = root.resolve(), device_id, workers
        self.proctor_exam = proctor_exam  # the exam the proctor token may see
        self.broker_port, self.http_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.screen = self.root / "pc" / "screen.png"  # what the candidate's PC shows (the pairing QR code)
        self.logs = self.root / "logs"
        self.broker: BrokerProcess | None = None
        self.bridge: subprocess.Popen[bytes] | None = None
        self.edge: subprocess.Popen[bytes] | None = None
        self.tokens: dict[str, str] = {}
        self.proctor_password = ""

    # -- provisioning -------------------------------------------------------------------------------------

    def prepare(self, scenario: Path, realtime: bool = True) -> None:
        secrets, self.logs = self.root / "secrets", self.root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        bridge_password, self.proctor_password = new_password(), new_password()
        _secret(secrets / "bridge.mqtt", bridge_password)
        self._write_bridge_config(secrets)
        bridge_key = load_or_create_key(secrets / "bridge.key")
        (self.root / "edge").mkdir(parents=True, exist_ok=True)
        (self.root / "edge" / "bridge.pub").write_text(public_pem(bridge_key))
        device_key = load_or_create_key(self.root / "edge" / "data" / "device.key")
        device_password = new_password()
        _secret(self.root / "edge" / "mqtt.password", device_password)
        store = Store(f"sqlite:///{self.root / 'bridge.db'}")
        try:
            Ingestor(store).register(self.device_id, public_pem(device_key), hash_password(device_password))
            tokens = Tokens(store)
            self.tokens = {"client": tokens.create("client", "demo client"),
                           "proctor": tokens.create("proctor", "demo proctor", [self.proctor_exam])}
        finally:
            store.close()
        users = [BrokerUser("bridge", hash_password(bridge_password), "bridge"),
                 BrokerUser("proctor", hash_password(self.proctor_password), "proctor"),
                 BrokerUser(self.device_id, hash_password(device_password), "device")]
        files = write_broker_files(self.root / "broker", users, "127.0.0.1", self.broker_port,
                                   user=getpass.getuser())
        self.broker = BrokerProcess(files.conf, self.broker_port, self.logs / "mosquitto.log")
        self._write_edge_config(scenario, realtime, [
            "[link]", f"bridge_key = {toml_value(self.root / 'edge' / 'bridge.pub')}",
            f'evidence_url = "{self.url}"', "stats_every = 2",
            "[link.broker]", 'host = "127.0.0.1"', f"port = {self.broker_port}",
            f'username = "{self.device_id}"', f"password_file = {toml_value(self.root / 'edge' / 'mqtt.password')}",
            "keepalive = 5", "backoff_max = 2"])

    def prepare_fleet(self, scenario: Path, realtime: bool = True) -> None:
        """Provision for a unit that enrols itself (docs/bridge.md, "Enrolment and fleet"): the bridge's config with
        ``[fleet]`` (the broker's accounts file and an admin account that tells the running broker), the broker's
        files from ``python -m cloud_bridge broker-config --admin``, and the unit's config as the image ships it:
        no ``[link]`` and a placeholder device id, which the enrolment's INVIGIL_* overrides replace. No unit is
        registered and no token made: that is staff's work through the bridge's CLI (:meth:`cli`)."""
        secrets, self.logs = self.root / "secrets", self.root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        _secret(secrets / "bridge.mqtt", new_password())
        _secret(secrets / "admin.mqtt", new_password())
        broker = self.root / "broker"
        self._write_bridge_config(secrets, [
            "[fleet]", f"accounts_file = {toml_value(broker / 'dynamic-security.json')}",
            "[fleet.broker_admin]", 'host = "127.0.0.1"', f"port = {self.broker_port}", 'username = "invigil-admin"',
            f"password_file = {toml_value(secrets / 'admin.mqtt')}"])
        self.cli("broker-config", "--out", str(broker), "--port", str(self.broker_port),
                 "--admin", f"invigil-admin:{secrets / 'admin.mqtt'}", "--user", getpass.getuser())
        self.broker = BrokerProcess(broker / "mosquitto.conf", self.broker_port, self.logs / "mosquitto.log")
        self._write_edge_config(scenario, realtime, [], device_id="unit-0001")

    def cli(self, *args: str) -> str:
        """``python -m cloud_bridge ARGS --config <the bridge's config>``, as staff run it; its output."""
        done = subprocess.run([sys.executable, "-m", "cloud_bridge", *args, "--config", str(self.bridge_config)],
                              cwd=ROOT, capture_output=True, text=True, timeout=WAIT_SECONDS)
        if done.returncode != 0:
            raise RuntimeError(f"cloud_bridge {' '.join(args)}: exit {done.returncode}: {done.stderr[-2000:]}")
        return done.stdout

    def _write_bridge_config(self, secrets: Path, extra: tuple[str, ...] | list[str] = ()) -> None:
        self.bridge_config = self.root / "bridge.toml"
        self.bridge_config.write_text("\n".join([
            f"database_url = {toml_value('sqlite:///' + str(self.root / 'bridge.db'))}",
            f"key_file = {toml_value(secrets / 'bridge.key')}",
            "offline_after = 10",
            "[mqtt]", 'host = "127.0.0.1"', f"port = {self.broker_port}", 'username = "bridge"',
            f"password_file = {toml_value(secrets / 'bridge.mqtt')}", f"workers = {self.workers}",
            f'client_prefix = "bridge-{self.broker_port}"',
            "[http]", 'host = "127.0.0.1"', f"port = {self.http_port}", *extra, ""]))

    def _write_edge_config(self, scenario: Path, realtime: bool, link: list[str], device_id: str | None = None) -> None:
        self.edge_config = self.root / "edge" / "edge.toml"
        self.edge_config.parent.mkdir(parents=True, exist_ok=True)
        audio = scenario / "audio.wav"
        self.edge_config.write_text("\n".join([
            f'device_id = "{device_id or self.device_id}"', f"data_dir = {toml_value(self.root / 'edge' / 'data')}",
            "[camera]", 'type = "scenario"', f"path = {toml_value(scenario)}", f"realtime = {toml_value(realtime)}",
            f"screen = {toml_value(self.screen)}",
            *(["[audio]", 'type = "wav"', f"path = {toml_value(audio)}", f"realtime = {toml_value(realtime)}"]
              if audio.is_file() else []),
            *link, ""]))

    # -- processes ----------------------------------------------------------------------------------------

    def start_broker(self) -> None:
        assert self.broker is not None, "prepare() first"
        self.broker.start()

    def start_bridge(self) -> None:
        self.bridge, url = start_bridge(self.bridge_config, self.logs / "bridge.log", ROOT, WAIT_SECONDS)
        assert url == self.url, f"the bridge serves on {url}, not on its configured {self.url}"

    def start_edge(self, text: bool = False, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """``python -m edge_app run``; ``env``: variables added to this process's (an enrolment's overrides)."""
        args = [sys.executable, "-m", "edge_app", "run", "--config", str(self.edge_config)]
        with (self.logs / "edge.log").open("ab") as log:
            self.edge = subprocess.Popen(args + (["--text"] if text else []), cwd=ROOT, stdout=subprocess.PIPE,
                                         stderr=log, env={**os.environ, **(env or {})})
        return self.edge

    def stop(self) -> None:
        for process in (self.edge, self.bridge):
            stop_process(process, WAIT_SECONDS)
        if self.broker is not None:
            self.broker.stop()

    def tail(self, name: str) -> str:
        return tail(self.logs / name)
