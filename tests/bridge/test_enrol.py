"""Enrolment codes and a unit's enrolment: one use, expiry, the unit's rows and account made together or not at all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_bridge import audit
from cloud_bridge.broker import BrokerUser, hash_password
from cloud_bridge.broker_admin import BrokerAccounts, DynsecControl
from cloud_bridge.dynsec import render_dynsec
from cloud_bridge.enrol import CODE_LENGTH, BrokerAddress, EnrolError, Enrolment, new_code, normalize
from cloud_bridge.store import Store
from cloud_bridge.store.models import Device, EnrolCode, Unit
from edge_app.protocol.commands import PAIR_CODE_ALPHABET
from edge_app.protocol.keys import public_pem
from edge_app.protocol.transport import BrokerConnection
from tests.bridge.parts import Clock, count
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
