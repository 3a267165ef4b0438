"""First-boot enrolment (``python -m edge_app enrol``) against the bridge's real HTTP server (waitress, the app of
``serve``) over a temporary SQLite store: what a success keeps and with which modes, and each refusal named
with nothing written and the code kept for another try. With a private CA (a throwaway one, tests/certs.py) the
unit keeps the CA the bridge sends and its link verifies a real Mosquitto's TLS listener by it."""

from __future__ import annotations

import base64
import getpass
import json
import logging
import ssl
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_bridge.broker import BrokerUser, hash_password, new_password, write_broker_files
from cloud_bridge.broker_admin import BrokerAccounts, DynsecControl
from cloud_bridge.config import BridgeConfig, HttpConfig
from cloud_bridge.config import load as load_bridge_config
from cloud_bridge.enrol import BrokerAddress, Enrolment
from cloud_bridge.fleet import Fleet, build
from cloud_bridge.services import Services
from cloud_bridge.staff import Staff
from cloud_bridge.store import Store
from cloud_bridge.store.models import Device, EnrolCode
from cloud_bridge.web import create_app, http_server, stop_server
from cloud_bridge.web.fleet import FLEET
from edge_app.__main__ import main
from edge_app.config import load
from edge_app.enrol import BRIDGE_KEY_FILE, CA_FILE, ENV_FILE, PASSWORD_FILE, EnrolError, model_version, read_env
from edge_app.enrol import _checked as checked_answer
from edge_app.link.mqtt import MqttLink
from edge_app.link.outbox import Outbox
from edge_app.protocol.keys import load_or_create_key, public_pem
from edge_app.protocol.transport import MAX_CA_BYTES, BrokerConnection, new_client
from tests.certs import make_authority, make_tls
from tests.mosquitto import Mosquitto, free_port, wait_for

BRIDGE_KEY = Ed25519PrivateKey.generate()
ADDRESS = BrokerAddress("mqtt.centre.test", 8883, True)


class Bridge:
    """The bridge's app on waitress in a thread, with fleet services whose clock the test sets, or those the
    running bridge builds from ``config`` (cloud_bridge.fleet.build)."""

    def __init__(self, root: Path, broker_reachable: bool = True, address: BrokerAddress = ADDRESS,
                 config: BridgeConfig | None = None) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.store = Store(f"sqlite:///{root / 'bridge.db'}")
        self.now = 1_800_000_000.0
        http = HttpConfig.model_validate({"host": "127.0.0.1", "port": 0})
        self.app = create_app(Services.build(self.store), None, http)
        if config is not None:
            fleet = build(config, self.store, public_pem(BRIDGE_KEY))
        else:
            control = None if broker_reachable else DynsecControl(BrokerConnection.model_validate(
                {"host": "127.0.0.1", "port": free_port(), "username": "admin"}), timeout=2)
            accounts = BrokerAccounts(None, control)
            fleet = Fleet(self.store, accounts, Enrolment(self.store, accounts, address, public_pem(BRIDGE_KEY),
                                                          clock=lambda: self.now), Staff(self.store, log_n=10))
        self.enrolment = fleet.enrolment
        self.app.extensions[FLEET] = fleet
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
    assert not any((state / name).exists() for name in (PASSWORD_FILE, ENV_FILE, BRIDGE_KEY_FILE, CA_FILE))
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


def enrol_again(bridge: Bridge, unit: Path, device_id: str) -> dict[str, str]:
    """Enrol the unit once more (a new code from ``bridge``, a new id); the env file's variables."""
    state = unit.parent / "state"
    code_file = seed(state, bridge.code(), bridge.url)
    assert main(["enrol", "--config", str(unit), "--code-file", str(code_file), "--device-id", device_id]) == 0
    return read_env(state / ENV_FILE)


def test_re_enrolment_replaces_the_ca_and_an_answer_without_one_removes_it(tmp_path: Path, unit: Path) -> None:
    state = unit.parent / "state"
    first, second = (make_authority(tmp_path / name, name).cert_file.read_text() for name in ("CA-one", "CA-two"))
    bridges = [Bridge(tmp_path / "b1", address=BrokerAddress("mqtt.centre.test", 8883, True, first)),
               Bridge(tmp_path / "b2", address=BrokerAddress("mqtt.centre.test", 8883, True, second)),
               Bridge(tmp_path / "b3")]
    try:
        env = enrol_again(bridges[0], unit, "cam-21")
        assert env["INVIGIL_LINK__BROKER__CA_FILE"] == str(state / CA_FILE)
        assert (state / CA_FILE).read_text() == first and mode(state / CA_FILE) == 0o644  # public: a certificate
        assert load(unit, environ=env).link.broker.ca_file == state / CA_FILE  # type: ignore[union-attr]
        env = enrol_again(bridges[1], unit, "cam-22")
        assert (state / CA_FILE).read_text() == second and env["INVIGIL_LINK__BROKER__CA_FILE"] == str(state / CA_FILE)
        env = enrol_again(bridges[2], unit, "cam-23")  # this bridge sends no CA: the stale one goes, and its line
        assert not (state / CA_FILE).exists() and "INVIGIL_LINK__BROKER__CA_FILE" not in env
        assert load(unit, environ=env).link.broker.ca_file is None  # type: ignore[union-attr]
        assert not [p.name for p in state.iterdir() if p.name.startswith(".")]  # no temp file left
    finally:
        for bridge in bridges:
            bridge.stop()


def good_answer(ca_pem: object) -> dict[str, Any]:
    return {"device_id": "cam-30", "username": "cam-30", "password": new_password(),
            "broker": {"host": "127.0.0.1", "port": 8883, "tls": True, "ca_pem": ca_pem},
            "bridge_public_key": public_pem(BRIDGE_KEY)}


def bad_ca(case: str, ca: str, folder: Path) -> object:
    """The ``ca_pem`` an answer carries in each case of the table below (``ca``: a good CA certificate)."""
    if case == "private key":  # the CA's certificate with the server's private key after it
        tls = make_tls(folder)
        return tls.ca_file.read_text() + tls.key_file.read_text()
    return {"not PEM": "not PEM at all",
            "bad certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "public key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "too large": ca * (MAX_CA_BYTES // len(ca) + 1), "number": 42, "null": None,
            "list": ["-----BEGIN CERTIFICATE-----"], "tls off": ca}[case]


@pytest.mark.parametrize("case, problem", [
    ("not PEM", "holds no PEM block"), ("bad certificate", "not valid X.509 certificates"),
    ("private key", "holds a private key"), ("public key", "PUBLIC KEY besides certificates"),
    ("too large", f"more than {MAX_CA_BYTES}"), ("number", "not int"), ("null", "not NoneType"),
    ("list", "not list"), ("tls off", "sent without tls"),
])
def test_an_answer_with_an_unusable_ca_is_refused(tmp_path: Path, case: str, problem: str) -> None:
    ca = make_authority(tmp_path / "ca").cert_file.read_text()
    answer = good_answer(bad_ca(case, ca, tmp_path / "tls"))
    answer["broker"]["tls"] = case != "tls off"
    with pytest.raises(EnrolError) as caught:
        checked_answer(answer)  # before anything is written (enrol() writes only a checked answer)
    assert caught.value.reason == "bad_answer" and "broker.ca_pem" in str(caught.value) and problem in str(caught.value)
    assert "PRIVATE KEY-----" not in str(caught.value)  # the key is not echoed either
    assert checked_answer(good_answer(ca))["broker"]["ca_pem"] == ca  # the same answer with the CA alone is taken


class TlsSite:
    """A real Mosquitto with a TLS listener on loopback, its certificate from a throwaway CA, and the admin
    account through which the bridge adds enrolled units at once; the bridge's config points at both."""

    def __init__(self, root: Path) -> None:
        self.tls = make_tls(root / "certs")  # the CA and a server certificate for 127.0.0.1
        admin_password, self.port = new_password(), free_port()
        files = write_broker_files(root / "broker", [BrokerUser("admin", hash_password(admin_password), "control")],
                                   "127.0.0.1", self.port, tls=self.tls, user=getpass.getuser())
        (root / "admin.pw").write_text(admin_password + "\n")
        self.broker = Mosquitto(root / "broker", conf_text=files.conf.read_text())
        self.broker.start()
        ca = json.dumps(str(self.tls.ca_file))
        self.config = root / "bridge.toml"
        self.config.write_text(
            f'[mqtt]\nhost = "127.0.0.1"\nport = {self.port}\ntls = true\nca_file = {ca}\n'
            f'[fleet]\nunit_broker_ca_file = {ca}\naccounts_file = {json.dumps(str(files.dynsec))}\n'
            f'broker_admin = {{ host = "127.0.0.1", port = {self.port}, tls = true, ca_file = {ca}, '
            'username = "admin", password_file = "admin.pw" }\n')


@pytest.fixture
def tls_site(tmp_path: Path) -> Iterator[TlsSite]:
    site = TlsSite(tmp_path / "site")
    yield site
    site.broker.kill()


def test_a_unit_enrolled_with_a_private_ca_verifies_the_broker_by_it(
        tmp_path: Path, unit: Path, tls_site: TlsSite, caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str]) -> None:
    state = unit.parent / "state"
    bridge = Bridge(tmp_path / "bridge", config=load_bridge_config(tls_site.config, environ={}))
    outbox = Outbox(tmp_path / "outbox.db")
    links: list[MqttLink] = []
    try:
        code_file = seed(state, bridge.code(), bridge.url)
        assert main(["enrol", "--config", str(unit), "--code-file", str(code_file), "--device-id", "cam-40"]) == 0
        assert (state / CA_FILE).read_text() == tls_site.tls.ca_file.read_text()
        summary = capsys.readouterr().out
        assert f"TLS (verified by the CA the bridge sent, kept in {state.resolve() / CA_FILE})" in summary
        env = read_env(state / ENV_FILE)
        config = load(unit, environ=env)  # the shipped config with the enrolment's overrides
        assert config.link is not None and config.link.broker.tls and config.link.broker.ca_file == state / CA_FILE
        links.append(MqttLink(config.link.broker, config.device_id, outbox))
        links[0].start()
        wait_for(lambda: links[0].connected, what="the enrolled unit's link over TLS")  # verified by the sent CA

        without = load(unit, environ={k: v for k, v in env.items() if k != "INVIGIL_LINK__BROKER__CA_FILE"})
        assert without.link is not None and without.link.broker.ca_file is None  # the system's CAs
        client = new_client(without.link.broker, "cam-40")
        with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
            client.connect(without.link.broker.host, without.link.broker.port)
        with caplog.at_level(logging.WARNING, logger="edge_app.link.mqtt"):
            links.append(MqttLink(without.link.broker, without.device_id, outbox))
            links[1].start()
            wait_for(lambda: "certificate verify failed" in caplog.text, what="the link's verification failure")
        assert not links[1].connected and links[0].connected
    finally:
        for link in links:
            link.stop(5)
        outbox.close()
        bridge.stop()
