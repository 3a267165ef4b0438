"""``python -m cloud_bridge enrol-code``, ``staff add`` and ``staff unlock``, and the fleet built from a config
file."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from cloud_bridge import audit
from cloud_bridge.__main__ import main
from cloud_bridge.config import load
from cloud_bridge.fleet import build
from cloud_bridge.staff import Staff, StaffError
from cloud_bridge.store import Store

CODE = re.compile(r"^([2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4})  \(one unit, until .+\)$")


@pytest.fixture(autouse=True)
def no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("INVIGIL_BRIDGE__"):
            monkeypatch.delenv(name)


def config_file(folder: Path, fleet: str = "") -> Path:
    path = folder / "bridge.toml"
    path.write_text(f'database_url = "sqlite:///{folder / "bridge.db"}"\n'
                    f'[mqtt]\nhost = "10.0.0.5"\nport = 8883\ntls = true\n[fleet]\n{fleet}\n')
    return path


def test_enrol_code_prints_a_code_that_enrols(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from edge_app.protocol.keys import public_pem

    config = config_file(tmp_path, 'unit_broker_host = "mqtt.centre.test"\nmin_software_version = "1.2"')
    assert main(["enrol-code", "--config", str(config), "--device", "cam-07", "--ttl", "600", "--label", "r4"]) == 0
    printed = capsys.readouterr().out.strip()
    match = CODE.match(printed)
    assert match is not None and "device cam-07" in printed
    loaded = load(config)
    store = Store(loaded.database_url)
    try:
        fleet = build(loaded, store, "PEM")
        answer = fleet.enrolment.enrol({"code": match.group(1), "public_key": public_pem(Ed25519PrivateKey.generate()),
                                        "software_version": "1.3", "model_version": "m"})
        assert answer["device_id"] == "cam-07"
        assert answer["broker"] == {"host": "mqtt.centre.test", "port": 8883, "tls": True}  # port, tls: mqtt's
        assert fleet.minimum()["effective"] == "1.2"
        assert [(e["actor"], e["action"]) for e in audit.entries(store)] == [("cli", "issue_code"),
                                                                           ("code:1", "enrol")]
    finally:
        store.close()
    assert main(["enrol-code", "--config", str(config), "--device", "Not An Id"]) == 2
    assert "device_id must be" in capsys.readouterr().err


def test_staff_add_from_a_password_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = config_file(tmp_path)
    (tmp_path / "pw").write_text("a long staff password\n")
    assert main(["staff", "add", "--config", str(config), "ana", "--password-file", str(tmp_path / "pw")]) == 0
    assert "staff user ana added" in capsys.readouterr().out
    store = Store(load(config).database_url)
    try:
        token, _ = Staff(store).login("ana", "a long staff password")
        assert Staff(store).who(token) == "ana"
    finally:
        store.close()
    assert main(["staff", "add", "--config", str(config), "ana", "--password-file", str(tmp_path / "pw")]) == 2
    assert "exists already" in capsys.readouterr().err


@pytest.mark.parametrize("fleet, problem", [
    ('min_software_version = "latest"', "fleet.min_software_version"),
    ("code_ttl = 5", "fleet.code_ttl"),
    ('broker_admin = { host = "127.0.0.1", password_file = "nope" }', "fleet.broker_admin"),
    ("surprise = 1", "fleet.surprise"),
    ("staff_lockout_after = 0", "fleet.staff_lockout_after"),
    ("staff_lockout_seconds = 1", "fleet.staff_lockout_seconds"),
])
def test_fleet_config_problems_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str], fleet: str,
                                         problem: str) -> None:
    assert main(["--validate-config", str(config_file(tmp_path, fleet))]) == 2
    assert problem in capsys.readouterr().err


def test_broker_config_writes_the_admin_account_of_role_control(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import json

    (tmp_path / "bridge.pw").write_text("bridge-secret\n")
    (tmp_path / "admin.pw").write_text("admin-secret\n")
    config = config_file(tmp_path)
    config.write_text(config.read_text().replace("tls = true\n", 'username = "bridge"\npassword_file = "bridge.pw"\n'))
    plugin = tmp_path / "mosquitto_dynamic_security.so"
    plugin.write_bytes(b"")  # only its path goes into the config
    assert main(["broker-config", "--config", str(config), "--out", str(tmp_path / "out"), "--plugin", str(plugin),
                 "--admin", f"invigil-admin:{tmp_path / 'admin.pw'}"]) == 0
    accounts = json.loads((tmp_path / "out" / "dynamic-security.json").read_text())
    admin = next(c for c in accounts["clients"] if c["username"] == "invigil-admin")
    assert (admin["clientid"], admin["roles"][0]["rolename"]) == ("invigil-admin", "control-invigil-admin")
    role = next(r for r in accounts["roles"] if r["rolename"] == "control-invigil-admin")
    assert {acl["topic"] for acl in role["acls"]} == {"$CONTROL/dynamic-security/#"}


def test_the_running_bridge_has_its_fleet_and_minimum(tmp_path: Path) -> None:
    from cloud_bridge.app import Bridge
    from cloud_bridge.web.fleet import FLEET

    bridge = Bridge(load(config_file(tmp_path, 'min_software_version = "2.0"')), http=False)
    try:
        fleet = bridge.app.extensions[FLEET]
        assert bridge.services.sessions.min_software_version == "2.0" and fleet.floor == "2.0"
        assert fleet.enrolment.bridge_key_pem.startswith("-----BEGIN PUBLIC KEY-----")
        assert not fleet.accounts.live  # no broker_admin configured
    finally:
        bridge.store.close()


def test_staff_add_a_reviewer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = config_file(tmp_path)
    (tmp_path / "pw").write_text("a long reviewer password\n")
    assert main(["staff", "add", "--config", str(config), "rita", "--role", "reviewer", "--password-file",
                 str(tmp_path / "pw")]) == 0
    assert "reviewer user rita added" in capsys.readouterr().out
    store = Store(load(config).database_url)
    try:
        assert Staff(store).role("rita") == "reviewer"
    finally:
        store.close()


def test_staff_unlock_clears_a_lock_made_with_the_configured_lockout(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    config = config_file(tmp_path, "staff_lockout_after = 3\nstaff_lockout_seconds = 60")
    (tmp_path / "pw").write_text("a long staff password\n")
    assert main(["staff", "add", "--config", str(config), "ana", "--password-file", str(tmp_path / "pw")]) == 0
    loaded = load(config)
    store = Store(loaded.database_url)
    try:
        staff = build(loaded, store, None).staff
        assert (staff.lockout_after, staff.lockout_seconds) == (3, 60.0)
        for reason in ("invalid_credentials", "invalid_credentials", "locked", "locked"):
            with pytest.raises(StaffError) as caught:
                staff.login("ana", "a wrong password")
            assert caught.value.reason == reason
        capsys.readouterr()
        assert main(["staff", "unlock", "--config", str(config), "ana"]) == 0
        assert capsys.readouterr().out.strip() == "staff user ana unlocked (3 failed logins cleared)"
        assert staff.login("ana", "a long staff password")[0]
        assert main(["staff", "unlock", "--config", str(config), "ana"]) == 0
        assert capsys.readouterr().out.strip() == "staff user ana was not locked (0 failed logins cleared)"
        assert main(["staff", "unlock", "--config", str(config), "nobody"]) == 2
        assert "error: no staff user nobody" in capsys.readouterr().err
        unlocks = [(e["actor"], e["target"], e["detail"]) for e in audit.entries(store) if e["action"] == "unlock"]
        assert unlocks == [("cli", "ana", {"was_locked": True, "failures": 3}),
                           ("cli", "ana", {"was_locked": False, "failures": 0})]
    finally:
        store.close()
