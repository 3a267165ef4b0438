"""Unit accounts on a real Mosquitto 2.0: enrolment lets a unit in at once, revocation drops its connection at
once and keeps it out, and the rewritten accounts file holds the same after a broker restart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_bridge.broker import BrokerUser, hash_password
from cloud_bridge.broker_admin import BrokerAccounts, BrokerError, DynsecControl, refresh_accounts_file
from cloud_bridge.dynsec import render_dynsec, role_acls
from cloud_bridge.enrol import BrokerAddress, Enrolment
from cloud_bridge.fleet import Fleet
from cloud_bridge.staff import Staff
from cloud_bridge.store import Store
from edge_app.protocol.keys import public_pem
from edge_app.protocol.transport import BrokerConnection
from tests.bridge.broker_site import DEV, GRANTED_QOS1, NOT_AUTHORIZED, Site
from tests.mosquitto import wait_for

ADMINISTRATIVE_ACTION = 152  # DISCONNECT reason code (MQTT 5)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    site = Site(tmp_path / "broker")
    site.folder.mkdir()
    for name, role in (("bridge", "bridge"), ("admin", "control"), ("desk", "proctor"), ("unit-a", "device")):
        site.add(name, role)  # type: ignore[arg-type]
    site.start()
    yield site
    site.close()


def admin(site: Site, password_file: Path, timeout: float = 10.0) -> DynsecControl:
    return DynsecControl(BrokerConnection.model_validate({"host": "127.0.0.1", "port": site.port, "username": "admin",
                                                          "password_file": password_file}), timeout)


@pytest.fixture
def fleet(site: Site, tmp_path: Path) -> Iterator[Fleet]:
    (tmp_path / "admin.pw").write_text(site.passwords["admin"] + "\n")
    control = admin(site, tmp_path / "admin.pw")
    accounts = BrokerAccounts(site.folder / "dynamic-security.json", control)
    store = Store(f"sqlite:///{tmp_path / 'bridge.db'}")
    enrolment = Enrolment(store, accounts, BrokerAddress("127.0.0.1", site.port, False))
    yield Fleet(store, accounts, enrolment, Staff(store, log_n=10))
    store.close()


def enrol(fleet: Fleet, device_id: str) -> str:
    code = fleet.enrolment.issue("staff:ana")["code"]
    answer = fleet.enrolment.enrol({"code": code, "device_id": device_id, "software_version": "1.0.0",
                                    "model_version": "m1", "public_key": public_pem(Ed25519PrivateKey.generate())})
    return str(answer["password"])


def test_the_control_role_may_only_use_the_control_topic() -> None:
    acls = {(acl["acltype"], acl["topic"]) for acl in role_acls(BrokerUser("admin", hash_password("x"), "control"))}
    assert {topic for _kind, topic in acls} == {"$CONTROL/dynamic-security/#"}


def test_an_enrolled_unit_connects_at_once_and_a_revoked_one_is_dropped_at_once(site: Site, fleet: Fleet) -> None:
    bridge = site.connected("bridge", client_id="invigil-bridge-0")
    assert bridge.subscribe(f"{DEV}/+/status") == [GRANTED_QOS1]
    password = enrol(fleet, "cam-1")
    unit = site.peer("cam-1", password)
    assert unit.connect().value == 0  # no broker restart
    assert unit.publish(f"{DEV}/cam-1/status", b"online") == 0
    wait_for(lambda: bridge.payloads(f"{DEV}/cam-1/status") == [b"online"], what="the unit's status at the bridge")
    assert unit.subscribe(f"{DEV}/cam-1/cmd/#") == [GRANTED_QOS1]
    assert site.peer("cam-1", "not its password").connect().value == NOT_AUTHORIZED

    assert fleet.revoke("cam-1", "staff:ana", "stolen")["disconnected"] is True
    wait_for(lambda: unit.disconnects, what="the revoked unit's disconnection")
    assert unit.disconnects[0].value == ADMINISTRATIVE_ACTION
    assert site.peer("cam-1", password).connect().value == NOT_AUTHORIZED

    other = enrol(fleet, "cam-2")
    site.broker.restart()  # what the plugin reads at start: the rewritten file
    assert site.peer("cam-1", password).connect().value == NOT_AUTHORIZED
    assert site.peer("cam-2", other).connect().value == 0
    assert site.peer("desk").connect().value == 0  # other accounts are kept
    assert site.peer("unit-a").connect().value == NOT_AUTHORIZED  # unit accounts come from the registry alone
    assert site.peer("bridge", client_id="invigil-bridge-1").connect().value == 0


def test_a_wrong_admin_password_is_a_broker_error(site: Site, tmp_path: Path) -> None:
    (tmp_path / "wrong.pw").write_text("wrong\n")
    control = admin(site, tmp_path / "wrong.pw", timeout=5.0)
    with pytest.raises(BrokerError, match="refused the admin account"):
        control.run([{"command": "listClients"}])


def test_a_unit_account_cannot_use_the_control_topic(site: Site) -> None:
    unit = site.peer("unit-a")
    assert unit.connect().value == 0
    assert unit.subscribe("$CONTROL/dynamic-security/v1/response") == [NOT_AUTHORIZED]
    assert unit.publish("$CONTROL/dynamic-security/v1", b'{"commands":[{"command":"listClients"}]}') \
        == NOT_AUTHORIZED


def test_refresh_keeps_other_accounts_and_refuses_a_clash(tmp_path: Path) -> None:
    path = tmp_path / "dynamic-security.json"
    path.write_text(render_dynsec([BrokerUser("bridge", hash_password("x"), "bridge"),
                                   BrokerUser("old-unit", hash_password("y"), "device")]))
    refresh_accounts_file(path, [BrokerUser("new-unit", hash_password("z"), "device")])
    written = json.loads(path.read_text())
    assert [c["username"] for c in written["clients"]] == ["bridge", "new-unit"]
    assert [r["rolename"] for r in written["roles"]] == ["bridge-bridge", "device-new-unit"]
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(ValueError, match="clash"):
        refresh_accounts_file(path, [BrokerUser("bridge", hash_password("z"), "device")])
