"""The bridge's command line: config checks, the device registry, tokens, its key, the broker files, serve."""

from __future__ import annotations

import base64
import getpass
import json
import os
import queue
import signal
import socket
import stat
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from cloud_bridge.__main__ import main
from cloud_bridge.broker import PLUGIN_NAME, hash_password
from cloud_bridge.ingest import Ingestor
from cloud_bridge.store import Store
from cloud_bridge.tokens import Tokens
from edge_app.protocol.keys import public_pem
from tests.bridge.broker_site import NO_SUBSCRIBERS, Peer, plain_mqtt_is_dropped
from tests.bridge.parts import DEVICE_KEY
from tests.certs import make_tls
from tests.mosquitto import Mosquitto, free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("INVIGIL_BRIDGE__"):
            monkeypatch.delenv(name)


def config_file(folder: Path, database_url: str | None = None, extra: str = "", mqtt_port: int = 1883) -> Path:
    path = folder / "bridge.toml"
    url = database_url or f"sqlite:///{folder / 'bridge.db'}"
    path.write_text(f'database_url = "{url}"\nkey_file = "bridge.key"\n{extra}\n'
                    f'[mqtt]\nhost = "127.0.0.1"\nport = {mqtt_port}\n')
    return path


def public_key_file(folder: Path) -> Path:
    path = folder / "unit.pub"
    path.write_text(public_pem(DEVICE_KEY))
    return path


def test_validate_config_accepts_a_usable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config_file(tmp_path)
    assert main(["--validate-config", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: ok\n"
    assert not (tmp_path / "bridge.db").exists()  # a check touches nothing


@pytest.mark.parametrize(("text", "problems"), [
    ("[mqtt]\nport = 0\n", ["mqtt.host: Field required", "mqtt.port:"]),
    ("bogus = 1\n[mqtt]\nhost = 'h'\n", ["bogus: Extra inputs"]),
    ("[mqtt\n", ["not valid TOML"]),
])
def test_validate_config_lists_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                             problems: list[str]) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text(text)
    assert main(["--validate-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(str(path)) and all(problem in err for problem in problems)
    assert main(["--validate-config", str(tmp_path / "missing.toml")]) == 2


def test_device_add_registers_and_writes_a_private_password(store: Store, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    config = config_file(tmp_path, store.url)
    password_file = tmp_path / "unit-1.password"
    password_file.write_text("old\n")
    password_file.chmod(0o644)  # a file left readable: it must not stay so
    assert main(["device", "add", "--config", str(config), "unit-1", "--public-key", str(public_key_file(tmp_path)),
                 "--password-out", str(password_file)]) == 0
    assert "registered unit-1" in capsys.readouterr().out
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    password = password_file.read_text().strip()
    assert len(password) >= 24 and password != "old"
    (device,) = Ingestor(store).devices()
    assert (device.device_id, device.public_key) == ("unit-1", public_pem(DEVICE_KEY))
    salt = base64.b64decode((device.mqtt_password_hash or "").split("$")[3])
    assert hash_password(password, salt=salt) == device.mqtt_password_hash  # the broker will take this password
    assert main(["device", "list", "--config", str(config)]) == 0
    assert capsys.readouterr().out.startswith("unit-1 ")


@pytest.mark.parametrize(("device_id", "key_text", "problem"), [
    ("Unit 1", None, "device id"),
    ("unit-1", "not a key", "not PEM"),
])
def test_device_add_refuses(tmp_path: Path, capsys: pytest.CaptureFixture[str], device_id: str,
                            key_text: str | None, problem: str) -> None:
    key = public_key_file(tmp_path)
    if key_text is not None:
        key.write_text(key_text)
    out = tmp_path / "pw"
    assert main(["device", "add", "--config", str(config_file(tmp_path)), device_id, "--public-key", str(key),
                 "--password-out", str(out)]) == 2
    assert problem in capsys.readouterr().err and not out.exists()


def test_token_create_prints_a_working_token(store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = config_file(tmp_path, store.url)
    assert main(["token", "create", "--config", str(config), "--role", "proctor", "--label", "alice",
                 "--exam", "exam-1", "--exam", "exam-2"]) == 0
    token = capsys.readouterr().out.strip()
    grant = Tokens(store).grant(token)
    assert grant is not None and (grant.role, grant.exams) == ("proctor", {"exam-1", "exam-2"})
    with pytest.raises(SystemExit) as caught:
        main(["token", "create", "--config", str(config), "--role", "admin", "--label", "x"])
    assert caught.value.code == 2
    assert main(["token", "create", "--config", str(config), "--role", "proctor", "--label", "bob"]) == 2
    assert "must name the exams" in capsys.readouterr().err  # a proctor of every exam is not on offer


def test_key_prints_the_bridge_public_key_and_keeps_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = config_file(tmp_path)
    assert main(["key", "--config", str(config)]) == 0
    first = capsys.readouterr().out
    assert first.startswith("-----BEGIN PUBLIC KEY-----") and "PRIVATE" not in first
    assert isinstance(load_pem_public_key(first.encode()), Ed25519PublicKey)
    assert stat.S_IMODE((tmp_path / "bridge.key").stat().st_mode) == 0o600
    assert main(["key", "--config", str(config)]) == 0
    assert capsys.readouterr().out == first


def broker_config(tmp_path: Path) -> Path:
    """A bridge config with its MQTT account and one registered unit, unit-1."""
    (tmp_path / "bridge.pw").write_text("bridge-secret\n")
    config = config_file(tmp_path)
    config.write_text(config.read_text() + 'username = "bridge"\npassword_file = "bridge.pw"\n')
    assert main(["device", "add", "--config", str(config), "unit-1", "--public-key", str(public_key_file(tmp_path)),
                 "--password-out", str(tmp_path / "unit-1.pw")]) == 0
    return config


def test_broker_config_lists_the_registered_devices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = broker_config(tmp_path)
    (tmp_path / "alice.pw").write_text("alice-secret\n")
    tls = make_tls(tmp_path / "certs")
    out, plugin = tmp_path / "mosquitto", tmp_path / PLUGIN_NAME
    plugin.write_bytes(b"")  # only its path goes into the config
    assert main(["broker-config", "--config", str(config), "--out", str(out), "--host", "0.0.0.0", "--port", "8883",
                 "--proctor", f"alice:{tmp_path / 'alice.pw'}", "--tls-ca", str(tls.ca_file), "--tls-cert",
                 str(tls.cert_file), "--tls-key", str(tls.key_file), "--require-certificate",
                 "--tls-version", "tlsv1.3", "--plugin", str(plugin)]) == 0
    assert "3 accounts, TLS on 0.0.0.0:8883" in capsys.readouterr().out
    accounts = json.loads((out / "dynamic-security.json").read_text())
    assert {c["username"]: c.get("clientid") for c in accounts["clients"]} == {"alice": "alice", "bridge": None,
                                                                               "unit-1": "unit-1"}
    assert stat.S_IMODE((out / "dynamic-security.json").stat().st_mode) == 0o600
    unit = next(r for r in accounts["roles"] if r["rolename"] == "device-unit-1")
    assert {"acltype": "publishClientSend", "topic": "invigil/v1/dev/unit-1/event", "priority": 0,
            "allow": True} in unit["acls"]
    conf = (out / "mosquitto.conf").read_text().splitlines()
    assert {"listener 8883 0.0.0.0", f"plugin {plugin}", f"certfile {tls.cert_file}", "tls_version tlsv1.3",
            "require_certificate true"} <= set(conf)


@pytest.mark.parametrize("arguments, message", [
    (["--host", "0.0.0.0"], "plain-TCP listener on 0.0.0.0"),
    (["--tls-ca", "ca.pem"], "--tls-ca, --tls-cert and --tls-key together"),
    (["--require-certificate"], "--tls-ca, --tls-cert and --tls-key together"),
    (["--tls-ca", "no.pem", "--tls-cert", "no.pem", "--tls-key", "no.pem"], "no.pem is not a file"),
    (["--plugin", "nowhere.so"], "dynamic-security plugin"),
])
def test_broker_config_refuses_an_unsafe_or_incomplete_listener(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str) -> None:
    config = broker_config(tmp_path)
    assert main(["broker-config", "--config", str(config), "--out", str(tmp_path / "m"), *arguments]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "m").exists()


def test_broker_config_with_tls_runs_a_broker_that_refuses_plain_mqtt(tmp_path: Path) -> None:
    config = broker_config(tmp_path)
    tls, out, port = make_tls(tmp_path / "certs"), tmp_path / "mosquitto", free_port()
    assert main(["broker-config", "--config", str(config), "--out", str(out), "--port", str(port), "--tls-ca",
                 str(tls.ca_file), "--tls-cert", str(tls.cert_file), "--tls-key", str(tls.key_file),
                 "--user", getpass.getuser()]) == 0
    broker = Mosquitto(out, conf_text=(out / "mosquitto.conf").read_text())
    broker.start()
    try:
        unit = Peer(port, "unit-1", (tmp_path / "unit-1.pw").read_text().strip(), tls=tls)
        assert unit.connect().value == 0 and unit.publish("invigil/v1/dev/unit-1/event", b"x") == NO_SUBSCRIBERS
        unit.close()
        assert plain_mqtt_is_dropped(port, "bridge-secret")
    finally:
        broker.kill()


def test_broker_config_needs_the_bridge_account(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["broker-config", "--config", str(config_file(tmp_path)), "--out", str(tmp_path / "m")]) == 2
    assert "mqtt.username" in capsys.readouterr().err and not (tmp_path / "m").exists()


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2 and "a command is required" in capsys.readouterr().err


def test_serve_runs_until_sigterm(tmp_path: Path) -> None:
    mosquitto = Mosquitto(tmp_path / "mqtt")
    mosquitto.start()
    config = config_file(tmp_path, mqtt_port=mosquitto.port)
    config.write_text(config.read_text() + f"[http]\nport = {free_port()}\n")
    log = tmp_path / "serve.log"
    with log.open("w") as err:
        process = subprocess.Popen([sys.executable, "-m", "cloud_bridge", "serve", "--config", str(config)],
                                   cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(process.stdout.readline() if process.stdout else ""),
                     daemon=True).start()
    try:
        line = lines.get(timeout=30)  # printed once everything is up
        assert line.startswith("bridge serving on http://127.0.0.1:"), log.read_text()
        with urllib.request.urlopen(line.split()[-1] + "/healthz", timeout=10) as response:
            assert response.status == 200 and response.read().strip() == b'{"ok":true}'
        port = int(line.strip().rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:  # a gigabyte announced, unsent
            sock.sendall(b"POST /api/v1/evidence HTTP/1.1\r\nHost: b\r\nContent-Length: 1000000000\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 413")  # answered from the headers, nothing read
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        mosquitto.stop()
