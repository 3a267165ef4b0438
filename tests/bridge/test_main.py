"""The bridge's command line: config checks, the device registry, tokens, its key, the broker files, serve."""

from __future__ import annotations

import base64
import os
import queue
import signal
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
from cloud_bridge.broker import hash_password
from cloud_bridge.ingest import Ingestor
from cloud_bridge.store import Store
from cloud_bridge.tokens import Tokens
from edge_app.protocol.keys import public_pem
from tests.bridge.parts import DEVICE_KEY
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
    assert main(["token", "create", "--config", str(config), "--role", "proctor", "--label", "alice"]) == 0
    token = capsys.readouterr().out.strip()
    assert Tokens(store).role(token) == "proctor"
    with pytest.raises(SystemExit) as caught:
        main(["token", "create", "--config", str(config), "--role", "admin", "--label", "x"])
    assert caught.value.code == 2


def test_key_prints_the_bridge_public_key_and_keeps_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = config_file(tmp_path)
    assert main(["key", "--config", str(config)]) == 0
    first = capsys.readouterr().out
    assert first.startswith("-----BEGIN PUBLIC KEY-----") and "PRIVATE" not in first
    assert isinstance(load_pem_public_key(first.encode()), Ed25519PublicKey)
    assert stat.S_IMODE((tmp_path / "bridge.key").stat().st_mode) == 0o600
    assert main(["key", "--config", str(config)]) == 0
    assert capsys.readouterr().out == first


def test_broker_config_lists_the_registered_devices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bridge.pw").write_text("bridge-secret\n")
    (tmp_path / "alice.pw").write_text("alice-secret\n")
    config = config_file(tmp_path)
    config.write_text(config.read_text() + 'username = "bridge"\npassword_file = "bridge.pw"\n')
    assert main(["device", "add", "--config", str(config), "unit-1", "--public-key", str(public_key_file(tmp_path)),
                 "--password-out", str(tmp_path / "unit-1.pw")]) == 0
    out = tmp_path / "mosquitto"
    assert main(["broker-config", "--config", str(config), "--out", str(out), "--port", "8883",
                 "--proctor", f"alice:{tmp_path / 'alice.pw'}"]) == 0
    assert "3 accounts" in capsys.readouterr().out
    passwords = (out / "passwords").read_text()
    assert sorted(line.split(":")[0] for line in passwords.splitlines()) == ["alice", "bridge", "unit-1"]
    assert stat.S_IMODE((out / "passwords").stat().st_mode) == 0o600
    acl = (out / "acl").read_text()
    assert "user unit-1\n" in acl and "topic write invigil/v1/dev/unit-1/event" in acl
    assert "8883" in (out / "mosquitto.conf").read_text()


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
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        mosquitto.stop()
