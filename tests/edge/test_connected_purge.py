"""The unit follows the bridge's retention: a signed ``evidence_purge`` over a real Mosquitto deletes the named
snapshots and their clips from the unit's evidence folder, ignores digests it does not hold, and a purge not
signed by the bridge deletes nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_app.config import parse
from edge_app.connected import ConnectedDevice
from edge_app.protocol import evidence_digest
from edge_app.protocol.keys import public_pem
from tests.edge.test_connected import DEVICE, BridgeSide, bridge, bridge_key
from tests.mosquitto import Mosquitto, wait_for

__all__ = ["bridge", "bridge_key"]  # the fixtures, shared with the connected unit's tests


@pytest.fixture
def unit(tmp_path: Path, broker: Mosquitto, bridge_key: Ed25519PrivateKey) -> Iterator[ConnectedDevice]:
    (tmp_path / "bridge.pub").write_text(public_pem(bridge_key))
    config = parse({"device_id": DEVICE, "data_dir": str(tmp_path / "data"),
                    "camera": {"type": "scenario", "path": str(tmp_path)},
                    "link": {"broker": {"host": "127.0.0.1", "port": broker.port, "backoff_min": 0.05,
                                        "backoff_max": 0.3},
                             "bridge_key": str(tmp_path / "bridge.pub"), "stats_every": 5}}, environ={})
    assert config.link is not None
    device = ConnectedDevice(config, config.link, enroll=lambda _photo: None)
    device.start()
    wait_for(lambda: device.mqtt.subscribed, what="the unit to subscribe to its commands")
    yield device
    device.stop()


def keep(device: ConnectedDevice, alert_id: str, data: bytes) -> str:
    day = device.config.evidence_dir() / "20270115"
    day.mkdir(parents=True, exist_ok=True)
    (day / f"{alert_id}.jpg").write_bytes(data)
    (day / f"{alert_id}.avi").write_bytes(b"RIFF" + data)
    return evidence_digest(hashlib.sha256(data).hexdigest())


def files(device: ConnectedDevice) -> list[str]:
    return sorted(p.name for p in device.config.evidence_dir().rglob("*") if p.is_file())


def test_a_signed_purge_deletes_the_named_snapshots_and_clips(unit: ConnectedDevice, bridge: BridgeSide) -> None:
    messages: list[dict[str, Any]] = []
    unit.emit_local = messages.append
    gone = keep(unit, "alert-a", b"\xff\xd8 dismissed")
    keep(unit, "alert-b", b"\xff\xd8 confirmed")
    bridge.command("evidence_purge", {"digests": [gone, "B" * 22]})  # one digest the unit never held
    wait_for(lambda: any(m.get("state") == "evidence_purged" for m in messages), what="the purge")
    assert files(unit) == ["alert-b.avi", "alert-b.jpg"]
    assert next(m for m in messages if m.get("state") == "evidence_purged")["files"] == 2


def test_a_purge_not_signed_by_the_bridge_deletes_nothing(unit: ConnectedDevice, bridge: BridgeSide) -> None:
    messages: list[dict[str, Any]] = []
    unit.emit_local = messages.append
    digest = keep(unit, "alert-a", b"\xff\xd8 kept")
    bridge.command("evidence_purge", {"digests": [digest]}, key=Ed25519PrivateKey.generate())
    wait_for(lambda: any(m.get("state") == "command_refused" for m in messages), what="the refusal")
    assert files(unit) == ["alert-a.avi", "alert-a.jpg"]
