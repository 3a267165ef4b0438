"""First-boot enrolment (``python -m edge_app enrol``) against the bridge's real HTTP server (waitress, the app of
``serve``) over a temporary SQLite store: what a success keeps and with which modes, and each refusal named
with nothing written and the code kept for another try."""

from __future__ import annotations

import base64
import json
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_bridge.broker import hash_password
from cloud_bridge.broker_admin import BrokerAccounts, DynsecControl
from cloud_bridge.config import HttpConfig
from cloud_bridge.enrol import BrokerAddress, Enrolment
from cloud_bridge.fleet import Fleet
from cloud_bridge.services import Services
from cloud_bridge.staff import Staff
from cloud_bridge.store import Store
from cloud_bridge.store.models import Device, EnrolCode
from cloud_bridge.web import create_app, http_server, stop_server
from cloud_bridge.web.fleet import FLEET
from edge_app.__main__ import main
from edge_app.config import load
from edge_app.enrol import BRIDGE_KEY_FILE, ENV_FILE, PASSWORD_FILE, model_version, read_env
from edge_app.protocol.keys import load_or_create_key, public_pem
from edge_app.protocol.transport import BrokerConnection
from tools.mosquitto import free_port

BRIDGE_KEY = Ed25519PrivateKey.generate()


class Bridge:
    """The bridge's app on waitress in a thread, with fleet services whose clock the test sets."""

    def __init__(self, root: Path, broker_reachable: bool = True) -> None:
        self.store = Store(f"sqlite:///{root / 'bridge.db'}")
        self.now = 1_800_000_000.0
        http = HttpConfig.model_validate({"host": "127.0.0.1", "port": 0})
        self.app = create_app(Services.build(self.store), None, http)
        control = None if broker_reachable else DynsecControl(BrokerConnection.model_validate(
            {"host": "127.0.0.1", "port": free_port(), "username": "admin"}), timeout=2)
        accounts = BrokerAccounts(None, control)
        self.enrolment = Enrolment(self.store, accounts, BrokerAddress("mqtt.centre.test", 8883, True),
                                   public_pem(BRIDGE_KEY), clock=lambda: self.now)
        self.app.extensions[FLEET] = Fleet(self.store, accounts, self.enrolment, Staff(self.store, log_n=10))
        self.server: Any = http_server(self.app)
        self.url = f"http://127.0.0.1:{self.server.effective_port}"
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()

    def code(self, **fields: Any) -> str:
        return str(self.enrolment.issue("staff:ana", **fields)["code"])

    def stop(self) -> None:
        stop_server(self.server, self.app, timeout=10.0)
        self.thread.join(10.0)
        self.store.close()


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[Bridge]:
    running = Bridge(tmp_path)
    yield running
    running.stop()


@pytest.fixture
def unit(tmp_path: Path) -> Path:
    """A unit's config as the image ships it (no [link]: the enrolment makes it) and its state folder."""
    state = tmp_path / "state"
    state.mkdir()
    config = tmp_path / "edge.toml"
    config.write_text(f'device_id = "unit-0001"\ndata_dir = {json.dumps(str(state))}\n'
                      '[camera]\ntype = "opencv"\nuri = "0"\n')
    return config


def seed(state: Path, code: str, url: str) -> Path:
    """What `python -m edge_app seed` leaves: the code and provision.json with the bridge's address."""
    (state / "provision.json").write_text(json.dumps({"bridge_url": url, "hostname": "invigil-1"}))
    path = state / "enrol-code"
    path.write_text(code + "\n")
    path.chmod(0o600)
    return path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_an_enrolment_keeps_the_credentials_privately_and_makes_a_linked_config(
        bridge: Bridge, unit: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = unit.parent / "state"
    code_file = seed(state, bridge.code(device_id="cam-07").lower(), bridge.url)  # case does not matter
    assert main(["enrol", "--config", str(unit), "--code-file", str(code_file)]) == 0
    assert "enrolled as cam-07" in capsys.readouterr().out
    assert not code_file.exists()
    assert mode(state / "device.key") == mode(state / PASSWORD_FILE) == mode(state / ENV_FILE) == 0o600
    assert (state / BRIDGE_KEY_FILE).read_text() == public_pem(BRIDGE_KEY)
    env = read_env(state / ENV_FILE)
    assert env == {"INVIGIL_DEVICE_ID": "cam-07", "INVIGIL_LINK__BROKER__HOST": "mqtt.centre.test",
                   "INVIGIL_LINK__BROKER__PORT": "8883", "INVIGIL_LINK__BROKER__TLS": "true",
                   "INVIGIL_LINK__BROKER__USERNAME": "cam-07",
                   "INVIGIL_LINK__BROKER__PASSWORD_FILE": str(state / PASSWORD_FILE),
                   "INVIGIL_LINK__BRIDGE_KEY": str(state / BRIDGE_KEY_FILE),
                   "INVIGIL_LINK__EVIDENCE_URL": bridge.url}
    config = load(unit, environ=env)  # the shipped config with the enrolment's overrides: a linked unit
    assert config.device_id == "cam-07" and config.link is not None
    assert (config.link.broker.host, config.link.broker.port, config.link.broker.tls) == ("mqtt.centre.test", 8883,
                                                                                          True)
    assert config.link.broker.username == "cam-07" and config.link.evidence_url == bridge.url
    units = bridge.app.extensions[FLEET].units()
    assert [(u["device_id"], u["model_version"]) for u in units] == [("cam-07", model_version(load(unit)))]
    # the bridge holds the key the unit made, and the password it was given is the one kept
    with bridge.store.session() as session:
        device = session.get(Device, "cam-07")
        assert device is not None and device.mqtt_password_hash is not None
        assert device.public_key == public_pem(load_or_create_key(state / "device.key"))
        _, _, iterations, salt, _ = device.mqtt_password_hash.split("$")
        kept = (state / PASSWORD_FILE).read_text()
        assert kept.endswith("\n")
        assert hash_password(kept.strip(), base64.b64decode(salt), int(iterations)) == device.mqtt_password_hash


def refused(unit: Path, code_file: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    """Run a failing enrolment: exit 1, the code kept, nothing of an enrolment written; stderr."""
    state = unit.parent / "state"
    assert main(["enrol", "--config", str(unit), "--code-file", str(code_file), *extra]) == 1
    assert code_file.exists()
    assert not any((state / name).exists() for name in (PASSWORD_FILE, ENV_FILE, BRIDGE_KEY_FILE))
    assert not [p.name for p in state.iterdir() if p.name.startswith(".")]  # no temp file left either
    return capsys.readouterr().err


def test_each_refusal_is_named_and_keeps_the_code(bridge: Bridge, unit: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    state = unit.parent / "state"
    # a code that never was (well-formed)
    assert "(unknown_code)" in refused(unit, seed(state, "ABCD-EFGH-JKMN", bridge.url), capsys)
    # a code for another device id
    code = bridge.code(device_id="cam-07")
    assert "(wrong_device)" in refused(unit, seed(state, code, bridge.url), capsys, "--device-id", "cam-08")
    # an expired code
    expired = bridge.code(ttl=60)
    bridge.now += 61
    assert "(expired_code)" in refused(unit, seed(state, expired, bridge.url), capsys)
    # a device id that is taken, then a used code
    first = seed(state, bridge.code(), bridge.url)
    assert main(["enrol", "--config", str(unit), "--code-file", str(first), "--device-id", "cam-09"]) == 0
    for name in (PASSWORD_FILE, ENV_FILE, BRIDGE_KEY_FILE):
        (state / name).unlink()  # a second unit from the same image, in the same state folder for the test
    taken = refused(unit, seed(state, bridge.code(), bridge.url), capsys, "--device-id", "cam-09")
    assert "(device_exists)" in taken and "cam-09 is registered already" in taken
    used = seed(state, code, bridge.url)
    assert main(["enrol", "--config", str(unit), "--code-file", str(used)]) == 0  # the cam-07 code, unused so far
    for name in (PASSWORD_FILE, ENV_FILE, BRIDGE_KEY_FILE):
        (state / name).unlink()
    assert "(used_code)" in refused(unit, seed(state, code, bridge.url), capsys)


def test_a_bridge_without_its_broker_refuses_and_the_code_stays_usable(
        tmp_path: Path, unit: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lonely = Bridge(tmp_path, broker_reachable=False)
    try:
        code = lonely.code()
        err = refused(unit, seed(unit.parent / "state", code, lonely.url), capsys)
        assert "(broker_unavailable)" in err and "try again later" in err
        with lonely.store.session() as session:
            assert session.query(EnrolCode).one().used_at is None
    finally:
        lonely.stop()


def test_an_unreachable_bridge_or_no_address_is_an_error_that_keeps_the_code(
        unit: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = unit.parent / "state"
    url = f"http://127.0.0.1:{free_port()}"
    err = refused(unit, seed(state, "ABCD-EFGH-JKMN", url), capsys)
    assert f"cannot reach the bridge at {url}" in err
    (state / "provision.json").unlink()
    assert "give --bridge-url" in refused(unit, state / "enrol-code", capsys)
    empty = state / "enrol-code"
    empty.write_text("\n")
    assert "holds no enrolment code" in refused(unit, empty, capsys, "--bridge-url", url)


def test_an_enrolment_that_cannot_be_kept_leaves_no_credentials_behind(bridge: Bridge, unit: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    state = unit.parent / "state"
    (state / ENV_FILE).mkdir()  # the last file cannot be written: the password written before it goes again
    code_file = seed(state, bridge.code(), bridge.url)
    assert main(["enrol", "--config", str(unit), "--code-file", str(code_file)]) == 1
    assert "ask staff to revoke it" in capsys.readouterr().err
    assert code_file.exists() and not (state / PASSWORD_FILE).exists() and not (state / BRIDGE_KEY_FILE).exists()
