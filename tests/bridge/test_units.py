"""Versions, the minimum software version and what a unit's record refuses (pairing, events)."""

from __future__ import annotations

import pytest

from cloud_bridge.store import Store
from cloud_bridge.store.models import FleetSetting, Unit
from cloud_bridge.units import at_least, effective_minimum, highest, pairing_refusal, version_key
from tests.bridge.parts import register


@pytest.mark.parametrize("version, key", [
    ("1", (1,)), ("1.4", (1, 4)), ("1.4.0", (1, 4)), ("1.4.2", (1, 4, 2)), ("1.4.2-rc1", (1, 4, 2)),
    ("1.4.2+abc", (1, 4, 2)), ("10.0.1", (10, 0, 1)),
])
def test_version_key(version: str, key: tuple[int, ...]) -> None:
    assert version_key(version) == key


@pytest.mark.parametrize("bad", ["", "v1", "1..2", "1.2.3.4.5", "abc", "1.2 ", "-1"])
def test_version_key_refuses(bad: str) -> None:
    with pytest.raises(ValueError, match="not a software version"):
        version_key(bad)


@pytest.mark.parametrize("version, minimum, ok", [
    ("1.4.2", None, True), (None, None, True), (None, "1.0", False), ("garbage", "1.0", False),
    ("1.4.2", "1.4", True), ("1.4", "1.4.0", True), ("1.3.9", "1.4", False), ("1.10", "1.9", True),
    ("2.0", "10.0", False),
])
def test_at_least(version: str | None, minimum: str | None, ok: bool) -> None:
    assert at_least(version, minimum) is ok


def test_highest() -> None:
    assert highest(None, None) is None
    assert highest("1.9", None, "1.10", "1.2") == "1.10"


def _unit(store: Store, device_id: str, version: str | None, revoked: bool = False) -> None:
    register(store, device_id)
    with store.session() as session, session.begin():
        session.add(Unit(device_id=device_id, software_version=version, revoked_at=1.0 if revoked else None))


def test_pairing_refusal_and_revoked(store: Store) -> None:
    _unit(store, "unit-new", "2.1.0")
    _unit(store, "unit-old", "1.0.0")
    _unit(store, "unit-gone", "2.1.0", revoked=True)
    register(store, "unit-plain")  # `device add`: no fleet record, version unknown
    with store.session() as session:
        assert pairing_refusal(session, "unit-new", None) is None
        assert pairing_refusal(session, "unit-plain", None) is None
        assert pairing_refusal(session, "unit-gone", None)[0] == "revoked"  # type: ignore[index]
        assert pairing_refusal(session, "unit-old", "2.0")[0] == "outdated_software"  # type: ignore[index]
        assert pairing_refusal(session, "unit-plain", "2.0")[0] == "outdated_software"  # type: ignore[index]
        assert pairing_refusal(session, "unit-new", "2.0") is None
    with store.session() as session, session.begin():
        session.add(FleetSetting(name="min_software_version", value="2.2", set_at=1.0, set_by="staff:a"))
    with store.session() as session:  # staff raised it above the config's floor
        assert effective_minimum(session, "2.0") == "2.2"
        assert effective_minimum(session, "3.0") == "3.0"
        assert pairing_refusal(session, "unit-new", "2.0")[0] == "outdated_software"  # type: ignore[index]
