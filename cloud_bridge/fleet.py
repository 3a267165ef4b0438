"""The fleet as staff see it: every unit with its health, versions and exam; revocation; the minimum software
version an exam needs. Built for the running bridge from the ``[fleet]`` config by :func:`build`."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from cloud_bridge import audit
from cloud_bridge.broker_admin import BrokerAccounts, BrokerError, DynsecControl, device_users
from cloud_bridge.config import BridgeConfig, unit_ca_pem
from cloud_bridge.enrol import BrokerAddress, Enrolment
from cloud_bridge.refusal import Refused
from cloud_bridge.staff import Staff
from cloud_bridge.store import Store
from cloud_bridge.store.models import Device, ExamSession, FleetSetting, Unit
from cloud_bridge.units import MIN_VERSION, VERSION, effective_minimum, stored_minimum
from edge_app.protocol.placement import placement_verdict

log = logging.getLogger(__name__)


class FleetError(Refused):
    """A fleet action staff cannot do."""


class Fleet:
    """Fleet listing and staff actions on units; ``staff`` and ``enrolment`` are the other staff services."""

    def __init__(self, store: Store, accounts: BrokerAccounts, enrolment: Enrolment, staff: Staff,
                 min_version_floor: str | None = None, clock: Callable[[], float] = time.time) -> None:
        self.store, self.accounts, self.enrolment, self.staff = store, accounts, enrolment, staff
        self.floor, self.clock = min_version_floor, clock

    def units(self) -> list[dict[str, Any]]:
        """Every registered unit: health from its heartbeats, versions, revocation and current exam."""
        with self.store.session() as session:
            rows = session.execute(select(Device, Unit).outerjoin(Unit, Unit.device_id == Device.device_id)
                                   .order_by(Device.device_id)).all()
            paired = {row.device_id: row for row in session.scalars(
                select(ExamSession).where(ExamSession.state == "paired"))}
            out = []
            for device, unit in rows:
                stats = json.loads(device.stats) if device.stats else None
                current = paired.get(device.device_id)
                out.append({
                    "device_id": device.device_id,
                    "status": "revoked" if unit is not None and unit.revoked_at is not None else device.status,
                    "last_seen": device.last_seen,
                    "software_version": unit.software_version if unit else None,
                    "model_version": unit.model_version if unit else None,
                    "enrolled_at": unit.enrolled_at if unit else None,
                    "revoked_at": unit.revoked_at if unit else None,
                    "health": {"status": device.status, "status_at": device.status_at, "heartbeat": stats,
                               "heartbeat_at": device.stats_at},
                    "placement": placement_verdict(stats.get("placement")) if isinstance(stats, dict) else None,
                    "exam": ({"exam_id": current.exam_id, "session_id": current.session_id,
                              "candidate_id": current.candidate_id, "paired_at": current.paired_at}
                             if current is not None else None),
                })
            return out

    def minimum(self) -> dict[str, str | None]:
        with self.store.session() as session:
            return {"effective": effective_minimum(session, self.floor), "config": self.floor,
                    "set": stored_minimum(session)}

    def set_minimum(self, version: object, actor: str) -> dict[str, str | None]:
        """Set (or with None clear) the run-time minimum software version; audited."""
        if version is not None and (not isinstance(version, str) or len(version) > 32
                                    or not VERSION.fullmatch(version)):
            raise FleetError("invalid", "version must be a software version such as 1.4.2, or null to clear it")
        now = self.clock()
        with self.store.session() as session, session.begin():
            row = session.get(FleetSetting, MIN_VERSION)
            if version is None:
                if row is not None:
                    session.delete(row)
            elif row is None:
                session.add(FleetSetting(name=MIN_VERSION, value=version, set_at=now, set_by=actor[:64]))
            else:
                row.value, row.set_at, row.set_by = version, now, actor[:64]
            audit.record(session, actor, "set_min_version", "fleet", {"version": version}, at=now)
        return self.minimum()

    def revoke(self, device_id: str, actor: str, reason: str = "") -> dict[str, Any]:
        """Revoke a unit: its broker account goes (and its connection, when the broker can be told), pairing
        and its later events are refused. The revocation holds even when the broker cannot be told."""
        now = self.clock()
        with self.store.write_transaction() as session:
            device = session.get(Device, device_id, with_for_update=True)
            if device is None:
                raise FleetError("not_found", f"no device {device_id}", 404)
            unit = session.get(Unit, device_id)
            if unit is None:  # registered with `device add`, never enrolled
                unit = Unit(device_id=device_id)
                session.add(unit)
            if unit.revoked_at is not None:
                raise FleetError("already_revoked", f"device {device_id} was revoked already", 409)
            unit.revoked_at, unit.revoked_by, unit.revoke_reason = now, actor[:64], reason[:500]
            device.mqtt_password_hash = None  # no broker account from any later broker-config either
            audit.record(session, actor, "revoke", device_id, {"reason": reason[:500]}, at=now)
            session.flush()
            remaining = device_users(session)
        try:
            self.accounts.remove(device_id, remaining)
            told = self.accounts.live
        except BrokerError as exc:
            log.error("device %s revoked, but the broker could not be told: %s", device_id, exc)
            told = False
        return {"device_id": device_id, "revoked_at": now, "disconnected": told}


def build(config: BridgeConfig, store: Store, bridge_key_pem: str | None) -> Fleet:
    """The running bridge's fleet services from its ``[fleet]`` config."""
    fleet = config.fleet
    control = DynsecControl(fleet.broker_admin) if fleet.broker_admin is not None else None
    accounts = BrokerAccounts(fleet.accounts_file, control)
    address = BrokerAddress(fleet.unit_broker_host or config.mqtt.host, fleet.unit_broker_port or config.mqtt.port,
                            config.units_use_tls, unit_ca_pem(config))
    enrolment = Enrolment(store, accounts, address, bridge_key_pem, fleet.code_ttl)
    staff = Staff(store, fleet.staff_session_ttl, lockout_after=fleet.staff_lockout_after,
                  lockout_seconds=fleet.staff_lockout_seconds)
    return Fleet(store, accounts, enrolment, staff, fleet.min_software_version)
