"""The whole system on one machine, the way it is deployed: a Mosquitto with per-account passwords and the
ACL the bridge generates, the bridge (``python -m cloud_bridge serve``), and a camera unit
(``python -m edge_app run``) playing a rendered scenario as its camera, all on loopback ports.

``Stack(root).prepare(scenario)`` provisions everything under ``root`` the way staff would (bridge key,
API tokens, the unit's key registered with a new MQTT password, broker files); then ``start_broker()``,
``start_bridge()`` and ``start_edge()`` run the three programs as child processes.
"""

from __future__ import annotations

import getpass
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from cloud_bridge.broker import BrokerUser, hash_password, new_password, write_broker_files
from cloud_bridge.ingest import Ingestor
from cloud_bridge.store import Store
from cloud_bridge.tokens import Tokens
from edge_app.atomic import write_bytes_atomic
from edge_app.protocol.keys import load_or_create_key, public_pem
from tools.mosquitto import BrokerProcess, free_port
from tools.processes import start_bridge, stop_process, tail

ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 30.0


def _secret(path: Path, text: str) -> Path:
    write_bytes_atomic(path, (text + "\n").encode(), mode=0o600)
    return path


def _toml(value: Any) -> str:
    return json.dumps(str(value) if isinstance(value, Path) else value)


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
        self.bridge_config = self.root / "bridge.toml"
        self.bridge_config.write_text("\n".join([
            f"database_url = {_toml('sqlite:///' + str(self.root / 'bridge.db'))}",
            f"key_file = {_toml(secrets / 'bridge.key')}",
            "offline_after = 10",
            "[mqtt]", 'host = "127.0.0.1"', f"port = {self.broker_port}", 'username = "bridge"',
            f"password_file = {_toml(secrets / 'bridge.mqtt')}", f"workers = {self.workers}",
            f'client_prefix = "bridge-{self.broker_port}"',
            "[http]", 'host = "127.0.0.1"', f"port = {self.http_port}", ""]))
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
        self.edge_config = self.root / "edge" / "edge.toml"
        audio = scenario / "audio.wav"
        self.edge_config.write_text("\n".join([
            f'device_id = "{self.device_id}"', f"data_dir = {_toml(self.root / 'edge' / 'data')}",
            "[camera]", 'type = "scenario"', f"path = {_toml(scenario)}", f"realtime = {_toml(realtime)}",
            f"screen = {_toml(self.screen)}",
            *(["[audio]", 'type = "wav"', f"path = {_toml(audio)}", f"realtime = {_toml(realtime)}"]
              if audio.is_file() else []),
            "[link]", f"bridge_key = {_toml(self.root / 'edge' / 'bridge.pub')}",
            f'evidence_url = "{self.url}"', "stats_every = 2",
            "[link.broker]", 'host = "127.0.0.1"', f"port = {self.broker_port}",
            f'username = "{self.device_id}"', f"password_file = {_toml(self.root / 'edge' / 'mqtt.password')}",
            "keepalive = 5", "backoff_max = 2", ""]))

    # -- processes ----------------------------------------------------------------------------------------

    def start_broker(self) -> None:
        assert self.broker is not None, "prepare() first"
        self.broker.start()

    def start_bridge(self) -> None:
        self.bridge, url = start_bridge(self.bridge_config, self.logs / "bridge.log", ROOT, WAIT_SECONDS)
        assert url == self.url, f"the bridge serves on {url}, not on its configured {self.url}"

    def start_edge(self, text: bool = False) -> subprocess.Popen[bytes]:
        args = [sys.executable, "-m", "edge_app", "run", "--config", str(self.edge_config)]
        with (self.logs / "edge.log").open("ab") as log:
            self.edge = subprocess.Popen(args + (["--text"] if text else []), cwd=ROOT, stdout=subprocess.PIPE,
                                         stderr=log)
        return self.edge

    def stop(self) -> None:
        for process in (self.edge, self.bridge):
            stop_process(process, WAIT_SECONDS)
        if self.broker is not None:
            self.broker.stop()

    def tail(self, name: str) -> str:
        return tail(self.logs / name)
