"""The fleet: the listing staff see, revocation (its later events dead-lettered, pairing refused) and the
minimum software version an exam needs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from cloud_bridge import audit
from cloud_bridge.broker import BrokerUser, hash_password
from cloud_bridge.broker_admin import BrokerAccounts, DynsecControl
from cloud_bridge.dynsec import render_dynsec
from cloud_bridge.enrol import BrokerAddress, Enrolment
from cloud_bridge.fleet import Fleet, FleetError
from cloud_bridge.health import Health
from cloud_bridge.ingest import Ingestor
from cloud_bridge.proctor import ProctorFeed
from cloud_bridge.sessions import SessionError, Sessions
from cloud_bridge.staff import Staff
from cloud_bridge.store import Store
from cloud_bridge.store.models import DeadLetter, Device, EventRow, Unit
from edge_app.protocol import device_topic
from edge_app.protocol.keys import public_pem
from edge_app.protocol.placement import GUIDANCE
from edge_app.protocol.transport import BrokerConnection
from tests.bridge.parts import DEVICE_KEY, PHOTO, Clock, count, event_payloads, register
from tests.mosquitto import free_port


@pytest.fixture
def fleet(store: Store, clock: Clock) -> Fleet:
    enrolment = Enrolment(store, BrokerAccounts(), BrokerAddress("127.0.0.1", 1883, False), clock=clock)
    return Fleet(store, BrokerAccounts(), enrolment, Staff(store, log_n=10), min_version_floor=None, clock=clock)


def enrol(fleet: Fleet, device_id: str, version: str = "1.4.2") -> None:
    code = fleet.enrolment.issue("staff:ana")["code"]
    fleet.enrolment.enrol({"code": code, "device_id": device_id, "public_key": public_pem(DEVICE_KEY),
                           "software_version": version, "model_version": "m-7"})


def test_the_listing_shows_health_versions_and_exam(fleet: Fleet, store: Store, clock: Clock) -> None:
    enrol(fleet, "unit-1")
    register(store, "unit-2")  # `device add`: no versions known
    health = Health(store, ProctorFeed(store), clock=clock)
    health.stats("unit-1", {"d": "unit-1", "fps": 9.5, "temp": 61.0, "placement": "hands"})
    sessions = Sessions(store, clock=clock)
    view = sessions.create("exam-1", "cand-1", PHOTO)
    sessions.pair("unit-1", view.pairing_code or "")
    units = {unit["device_id"]: unit for unit in fleet.units()}
    one, two = units["unit-1"], units["unit-2"]
    assert (one["status"], one["software_version"], one["model_version"]) == ("online", "1.4.2", "m-7")
    assert one["last_seen"] == clock.now and one["health"]["heartbeat"]["fps"] == 9.5
    assert one["placement"] == {"usable": False, "failed": ["hands"], "guidance": [GUIDANCE["hands"]]}
    assert one["exam"] == {"exam_id": "exam-1", "session_id": view.session_id, "candidate_id": "cand-1",
                           "paired_at": clock.now}
    assert (two["software_version"], two["exam"], two["placement"], two["status"]) == (None, None, None, "unknown")


def test_a_revoked_units_events_are_dead_lettered_as_revoked(fleet: Fleet, store: Store) -> None:
    enrol(fleet, "unit-1")
    ingestor = Ingestor(store)
    first, second = event_payloads(2, "unit-1")
    topic = device_topic("unit-1", "event")
    assert ingestor.handle(topic, first).status == "stored"
    answer = fleet.revoke("unit-1", "staff:ana", "lost in transit")
    assert answer["disconnected"] is False  # no broker to tell here
    outcome = ingestor.handle(topic, second)
    assert (outcome.status, outcome.reason) == ("dead_letter", "revoked")
    assert count(store, EventRow) == 1
    with store.session() as session:
        assert session.scalars(select(DeadLetter.reason)).all() == ["revoked"]
        device, unit = session.get(Device, "unit-1"), session.get(Unit, "unit-1")
        assert device is not None and device.mqtt_password_hash is None  # no account from any later broker-config
        assert unit is not None and (unit.revoked_by, unit.revoke_reason) == ("staff:ana", "lost in transit")
    assert fleet.units()[0]["status"] == "revoked"
    assert audit.entries(store)[-1] | {"id": 0, "at": 0} == {
        "id": 0, "at": 0, "actor": "staff:ana", "action": "revoke", "target": "unit-1",
        "detail": {"reason": "lost in transit"}}


def test_revoke_refuses_unknown_and_twice_and_takes_a_device_added_by_hand(fleet: Fleet, store: Store) -> None:
    with pytest.raises(FleetError) as caught:
        fleet.revoke("unit-9", "staff:ana")
    assert (caught.value.reason, caught.value.status) == ("not_found", 404)
    register(store, "unit-2")
    fleet.revoke("unit-2", "staff:ana")
    with pytest.raises(FleetError) as caught:
        fleet.revoke("unit-2", "staff:ana")
    assert (caught.value.reason, caught.value.status) == ("already_revoked", 409)
    assert [e["action"] for e in audit.entries(store)] == ["revoke"]


@pytest.mark.parametrize("version, floor, staff_minimum, reason", [
    ("1.4.2", None, None, None),
    ("1.4.2", "1.4", None, None),
    ("1.3.0", "1.4", None, "outdated_software"),
    ("1.4.2", "1.4", "1.5", "outdated_software"),  # staff raised it
    ("1.5.0", "1.4", "1.5", None),
    ("1.5.0", "1.6", "1.5", "outdated_software"),  # never below the config's floor
])
def test_pairing_needs_the_minimum_version(fleet: Fleet, store: Store, clock: Clock, version: str,
                                           floor: str | None, staff_minimum: str | None, reason: str | None) -> None:
    enrol(fleet, "unit-1", version)
    if staff_minimum:
        fleet.set_minimum(staff_minimum, "staff:ana")
    sessions = Sessions(store, clock=clock)
    sessions.min_software_version = floor
    code = sessions.create("exam-1", "cand-1", PHOTO).pairing_code or ""
    if reason is None:
        assert sessions.pair("unit-1", code).state == "paired"
        return
    with pytest.raises(SessionError) as caught:
        sessions.pair("unit-1", code)
    assert caught.value.reason == reason and "update it" in str(caught.value)


def test_pairing_refuses_a_revoked_unit(fleet: Fleet, store: Store, clock: Clock) -> None:
    enrol(fleet, "unit-1")
    fleet.revoke("unit-1", "staff:ana")
    sessions = Sessions(store, clock=clock)
    view = sessions.create("exam-1", "cand-1", PHOTO)
    with pytest.raises(SessionError) as caught:
        sessions.pair("unit-1", view.pairing_code or "")
    assert caught.value.reason == "revoked"
    assert sessions.get(view.session_id).state == "waiting"  # type: ignore[union-attr]


def test_set_minimum_and_clear_it(fleet: Fleet, store: Store) -> None:
    fleet.floor = "1.2"
    assert fleet.set_minimum("1.4", "staff:ana") == {"effective": "1.4", "config": "1.2", "set": "1.4"}
    assert fleet.set_minimum(None, "staff:ben") == {"effective": "1.2", "config": "1.2", "set": None}
    with pytest.raises(FleetError):
        fleet.set_minimum("newest", "staff:ana")
    assert [(e["actor"], json.dumps(e["detail"])) for e in audit.entries(store)] == [
        ("staff:ana", '{"version": "1.4"}'), ("staff:ben", '{"version": null}')]


def test_a_revocation_the_broker_cannot_hear_still_holds_and_reaches_the_file(store: Store, clock: Clock,
                                                                             tmp_path: Path) -> None:
    accounts_file = tmp_path / "dynamic-security.json"
    accounts_file.write_text(render_dynsec([BrokerUser("bridge", hash_password("x"), "bridge")]))
    working = Fleet(store, BrokerAccounts(accounts_file), Enrolment(store, BrokerAccounts(accounts_file),
                                                                    BrokerAddress("127.0.0.1", 1883, False)),
                    Staff(store, log_n=10), clock=clock)
    enrol(working, "unit-1")
    enrol(working, "unit-2")
    nowhere = BrokerConnection.model_validate({"host": "127.0.0.1", "port": free_port(), "username": "admin"})
    deaf = BrokerAccounts(accounts_file, DynsecControl(nowhere, timeout=2.0))
    fleet = Fleet(store, deaf, working.enrolment, working.staff, clock=clock)
    assert fleet.revoke("unit-1", "staff:ana")["disconnected"] is False
    names = {client["username"] for client in json.loads(accounts_file.read_text())["clients"]}
    assert names == {"bridge", "unit-2"}
    assert {unit["device_id"]: unit["status"] for unit in fleet.units()}["unit-1"] == "revoked"
