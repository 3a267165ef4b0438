"""Enrolment codes and a unit's enrolment: one use, expiry, the unit's rows and account made together or not at all;
the CA units verify the broker by (fleet.unit_broker_ca_file), checked at start and told with TLS only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_bridge import audit
from cloud_bridge.broker import BrokerUser, hash_password
from cloud_bridge.broker_admin import BrokerAccounts, DynsecControl
from cloud_bridge.config import ConfigError, load
from cloud_bridge.dynsec import render_dynsec
from cloud_bridge.enrol import CODE_LENGTH, BrokerAddress, EnrolError, Enrolment, new_code, normalize
from cloud_bridge.fleet import build
from cloud_bridge.store import Store
from cloud_bridge.store.models import Device, EnrolCode, Unit
from edge_app.protocol.commands import PAIR_CODE_ALPHABET
from edge_app.protocol.keys import public_pem
from edge_app.protocol.transport import BrokerConnection
from tests.bridge.parts import Clock, count
from tests.certs import make_authority
from tests.mosquitto import free_port

ADDRESS = BrokerAddress("broker.test", 8883, True)
PEM = public_pem(Ed25519PrivateKey.generate())


def body(code: str, **fields: Any) -> dict[str, Any]:
    return {"code": code, "public_key": PEM, "software_version": "1.4.2", "model_version": "yolo-int8-3", **fields}


@pytest.fixture
def enrolment(store: Store, clock: Clock) -> Enrolment:
    return Enrolment(store, BrokerAccounts(), ADDRESS, "BRIDGE PEM", code_ttl=3600.0, clock=clock)


def test_new_codes_are_typeable_and_distinct() -> None:
    codes = {new_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert len(code) == CODE_LENGTH + 2 and code.count("-") == 2
        assert set(code.replace("-", "")) <= set(PAIR_CODE_ALPHABET)


@pytest.mark.parametrize("typed, expected", [
    ("ABCD-EFGH-JKMN", "ABCDEFGHJKMN"), ("abcd efgh jkmn", "ABCDEFGHJKMN"), (" abcdefghjkmn ", "ABCDEFGHJKMN"),
    ("ABCD-EFGH-JKM", None), ("ABCD-EFGH-JKMO", None), ("ABCD-EFGH-JKM1", None), (None, None), (12, None),
    ("A" * 50, None),
])
def test_normalize(typed: object, expected: str | None) -> None:
    assert normalize(typed) == expected


def test_enrol_makes_the_unit_and_uses_the_code(enrolment: Enrolment, store: Store) -> None:
    issued = enrolment.issue("staff:ana", label="room 4")
    answer = enrolment.enrol(body(issued["code"].lower().replace("-", " "), device_id="cam-04"))
    assert answer["device_id"] == answer["username"] == "cam-04"
    assert len(answer["password"]) >= 32
    assert answer["broker"] == {"host": "broker.test", "port": 8883, "tls": True}
    assert answer["bridge_public_key"] == "BRIDGE PEM"
    with store.session() as session:
        device, unit = session.get(Device, "cam-04"), session.get(Unit, "cam-04")
        assert device is not None and unit is not None
        assert device.public_key == PEM and device.mqtt_password_hash is not None
        assert answer["password"] not in device.mqtt_password_hash  # only its hash is kept
        assert (unit.software_version, unit.model_version) == ("1.4.2", "yolo-int8-3")
        code = session.get(EnrolCode, issued["id"])
        assert code is not None and code.used_by == "cam-04"
        assert issued["code"] not in code.code_hash
    assert [(e["actor"], e["action"], e["target"]) for e in audit.entries(store)] == [
        ("staff:ana", "issue_code", f"code:{issued['id']}"), (f"code:{issued['id']}", "enrol", "cam-04")]


def test_the_bridge_chooses_an_id_or_the_code_names_it(enrolment: Enrolment) -> None:
    chosen = enrolment.enrol(body(enrolment.issue("cli")["code"]))["device_id"]
    assert chosen.startswith("unit-") and len(chosen) == 13
    named = enrolment.issue("cli", device_id="desk-9")
    assert enrolment.enrol(body(named["code"]))["device_id"] == "desk-9"


@pytest.mark.parametrize("case, reason, status", [
    ("unknown", "unknown_code", 403), ("used", "used_code", 409), ("expired", "expired_code", 410),
    ("malformed", "bad_code", 400), ("wrong_device", "wrong_device", 409), ("exists", "device_exists", 409),
    ("bad_key", "invalid", 400), ("bad_version", "invalid", 400), ("extra", "invalid", 400),
])
def test_enrol_refuses_and_creates_nothing(enrolment: Enrolment, store: Store, clock: Clock, case: str,
                                           reason: str, status: int) -> None:
    issued = enrolment.issue("cli", device_id="cam-01" if case == "wrong_device" else None)
    code, fields = issued["code"], {}
    if case == "unknown":
        code = new_code()
    elif case == "used":
        enrolment.enrol(body(code, device_id="cam-02"))
    elif case == "expired":
        clock.advance(3601.0)
    elif case == "malformed":
        code = "ABCD"
    elif case == "wrong_device":
        fields = {"device_id": "cam-09"}
    elif case == "exists":
        enrolment.enrol(body(enrolment.issue("cli")["code"], device_id="cam-03"))
        fields = {"device_id": "cam-03"}
    elif case == "bad_key":
        fields = {"public_key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}
    elif case == "bad_version":
        fields = {"software_version": "latest"}
    elif case == "extra":
        fields = {"password": "mine"}
    devices_before = count(store, Device)
    with pytest.raises(EnrolError) as caught:
        enrolment.enrol(body(code, **fields))
    assert (caught.value.reason, caught.value.status) == (reason, status)
    assert count(store, Device) == devices_before and count(store, Unit) == devices_before
    if case not in ("used", "exists"):
        with store.session() as session:
            assert session.get(EnrolCode, issued["id"]).used_at is None  # type: ignore[union-attr]


@pytest.mark.parametrize("fields", [{"device_id": "Bad Id"}, {"ttl": 10}, {"ttl": True}, {"label": "x" * 65}])
def test_issue_refuses(enrolment: Enrolment, store: Store, fields: dict[str, Any]) -> None:
    with pytest.raises(EnrolError):
        enrolment.issue("cli", **fields)
    assert count(store, EnrolCode) == 0 and audit.entries(store) == []


def test_an_unreachable_broker_leaves_nothing_and_the_code_usable(store: Store, clock: Clock,
                                                                    tmp_path: Path) -> None:
    accounts_file = tmp_path / "dynamic-security.json"
    accounts_file.write_text(render_dynsec([BrokerUser("bridge", hash_password("x"), "bridge")]))
    before = accounts_file.read_text()
    nowhere = BrokerConnection.model_validate({"host": "127.0.0.1", "port": free_port(), "username": "admin"})
    dead = DynsecControl(nowhere, timeout=2.0)
    broken = Enrolment(store, BrokerAccounts(accounts_file, dead), ADDRESS, clock=clock)
    issued = broken.issue("cli")
    with pytest.raises(EnrolError) as caught:
        broken.enrol(body(issued["code"], device_id="cam-05"))
    assert (caught.value.reason, caught.value.status) == ("broker_unavailable", 503)
    assert count(store, Device) == 0 and accounts_file.read_text() == before
    working = Enrolment(store, BrokerAccounts(accounts_file), ADDRESS, clock=clock)
    assert working.enrol(body(issued["code"], device_id="cam-05"))["device_id"] == "cam-05"
    names = {client["username"] for client in json.loads(accounts_file.read_text())["clients"]}
    assert names == {"bridge", "cam-05"}  # the file's other accounts kept, the unit's added


def test_with_tls_the_answer_carries_the_units_ca_and_without_tls_no_ca_is_possible(
        store: Store, clock: Clock, tmp_path: Path) -> None:
    ca_pem = make_authority(tmp_path).cert_file.read_text()
    enrolment = Enrolment(store, BrokerAccounts(), BrokerAddress("broker.test", 8883, True, ca_pem), clock=clock)
    answer = enrolment.enrol(body(enrolment.issue("cli")["code"], device_id="cam-06"))
    assert answer["broker"] == {"host": "broker.test", "port": 8883, "tls": True, "ca_pem": ca_pem}
    assert "PRIVATE" not in json.dumps(answer)
    with pytest.raises(ValueError, match="needs TLS"):
        BrokerAddress("broker.test", 1883, False, ca_pem)
    with pytest.raises(ValueError, match="holds a private key"):
        BrokerAddress("broker.test", 8883, True, ca_pem + private_key_pem())


def bridge_config(folder: Path, fleet: str, mqtt_tls: bool = True) -> Path:
    (folder / "broker-ca.pem").write_text(make_authority(folder / "certs").cert_file.read_text())
    path = folder / "bridge.toml"
    path.write_text(f'[mqtt]\nhost = "127.0.0.1"\nport = 8883\ntls = {str(mqtt_tls).lower()}\n[fleet]\n{fleet}')
    return path


def test_the_units_ca_file_is_read_at_start_and_sent_from_the_running_bridges_fleet(tmp_path: Path) -> None:
    config = load(bridge_config(tmp_path, 'unit_broker_ca_file = "broker-ca.pem"\n'), environ={})
    assert config.fleet.unit_broker_ca_file == tmp_path / "broker-ca.pem"  # relative to the config's folder
    store = Store(f"sqlite:///{tmp_path / 'bridge.db'}")
    try:
        enrolment = build(config, store, "BRIDGE PEM").enrolment
        answer = enrolment.enrol(body(enrolment.issue("cli")["code"]))
        assert answer["broker"]["ca_pem"] == (tmp_path / "broker-ca.pem").read_text()
        (tmp_path / "broker-ca.pem").write_text("gone bad")  # changed after the check: the start still refuses
        with pytest.raises(ConfigError, match=r"fleet\.unit_broker_ca_file: .*holds no PEM block"):
            build(config, store, None)
    finally:
        store.close()
    plain = load(bridge_config(tmp_path / "plain", "", mqtt_tls=False), environ={})
    assert plain.fleet.unit_broker_ca_file is None and not plain.units_use_tls


def private_key_pem() -> str:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


@pytest.mark.parametrize("content, problem", [
    ("not a certificate\n", "holds no PEM block"),
    (None, "holds a private key"),  # the CA's certificate followed by a private key
    ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "are not valid X.509 certificates"),
    ("x" * 70_000, "more than 65536"),
    (b"\xff\xfe", "is not PEM text"),
])
def test_an_unusable_units_ca_file_stops_the_start(tmp_path: Path, content: str | bytes | None,
                                                   problem: str) -> None:
    path = bridge_config(tmp_path, 'unit_broker_ca_file = "broker-ca.pem"\n')
    ca_file = tmp_path / "broker-ca.pem"
    if content is None:
        ca_file.write_text(ca_file.read_text() + private_key_pem())
    elif isinstance(content, bytes):
        ca_file.write_bytes(content)
    else:
        ca_file.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load(path, environ={})
    assert "fleet.unit_broker_ca_file" in str(caught.value) and problem in str(caught.value)


@pytest.mark.parametrize("fleet, mqtt_tls, problem", [
    ('unit_broker_ca_file = "missing.pem"\n', True, "cannot read"),
    ('unit_broker_ca_file = "broker-ca.pem"\n', False, "units connect without TLS"),
    ('unit_broker_ca_file = "broker-ca.pem"\nunit_broker_tls = false\n', True, "units connect without TLS"),
])
def test_a_units_ca_file_must_exist_and_needs_tls(tmp_path: Path, fleet: str, mqtt_tls: bool, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        load(bridge_config(tmp_path, fleet, mqtt_tls), environ={})
    with_tls = load(bridge_config(tmp_path, 'unit_broker_ca_file = "broker-ca.pem"\nunit_broker_tls = true\n',
                                  mqtt_tls=False), environ={})
    assert with_tls.units_use_tls and not with_tls.mqtt.tls  # the units' TLS, not the bridge's own, is what counts
