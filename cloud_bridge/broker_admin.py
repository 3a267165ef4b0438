"""Units' broker accounts while the bridge runs: the accounts file regenerated from the registry, and the
running broker told at once through the dynamic-security plugin's control topic.

``mosquitto.conf`` and the accounts file come from ``python -m cloud_bridge broker-config`` (cloud_bridge.broker);
the plugin reads that file when Mosquitto starts. After an enrolment or a revocation the bridge rewrites the
unit accounts in it (every other account, the bridge's, proctors' and the admin's, is kept as it is), so a
restart applies them; and when an admin account is configured (``fleet.broker_admin``: an account of role
``control``, which may use only ``$CONTROL/dynamic-security/#``), it sends the change to the running broker:
``createRole``/``createClient`` for a new unit, ``deleteClient``/``deleteRole`` to revoke one, which Mosquitto
2.0 follows by disconnecting the unit at once (measured in tests/bridge/test_broker_admin.py). The plugin saves
its file itself after such a change; the bridge's rewrite, made after the broker answered, holds the same
accounts.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud_bridge.broker import BrokerUser, checked_users
from cloud_bridge.dynsec import render_dynsec, role_acls
from cloud_bridge.store.models import Device, Unit
from edge_app.atomic import write_bytes_atomic
from edge_app.protocol.transport import BrokerConnection, new_client

CONTROL = "$CONTROL/dynamic-security/v1"
RESPONSE = f"{CONTROL}/response"
DEVICE_TEXT = "device"  # the textname render_dynsec gives unit accounts
GONE = ("Client not found", "Role not found")  # a removal already done


class BrokerError(RuntimeError):
    """The broker could not be told (unreachable, refused, an error answer)."""


def device_users(session: Session) -> list[BrokerUser]:
    """The broker accounts of registered units that are not revoked, from the registry in ``session``."""
    rows = session.execute(select(Device.device_id, Device.mqtt_password_hash)
                           .outerjoin(Unit, Unit.device_id == Device.device_id)
                           .where(Device.mqtt_password_hash.is_not(None), Unit.revoked_at.is_(None))
                           .order_by(Device.device_id)).all()
    return [BrokerUser(device_id, password_hash, "device") for device_id, password_hash in rows if password_hash]


def refresh_accounts_file(path: Path, devices: Sequence[BrokerUser]) -> None:
    """Rewrite the unit accounts of an accounts file (0600, atomically); every other account and role is kept."""
    current = json.loads(path.read_text(encoding="utf-8"))
    rendered = json.loads(render_dynsec(checked_users(devices)))
    clients = [c for c in current.get("clients", []) if c.get("textname") != DEVICE_TEXT]
    kept_names = {c.get("username") for c in clients}
    clash = kept_names & {user.name for user in devices}
    if clash:
        raise ValueError(f"unit accounts would clash with other accounts: {', '.join(sorted(clash))}")
    roles = [r for r in current.get("roles", []) if not str(r.get("rolename", "")).startswith("device-")]
    current["clients"] = sorted(clients + rendered["clients"], key=lambda c: str(c.get("username")))
    current["roles"] = sorted(roles + rendered["roles"], key=lambda r: str(r.get("rolename")))
    write_bytes_atomic(path, (json.dumps(current, indent=1, sort_keys=True) + "\n").encode(), mode=0o600)


class DynsecControl:
    """Commands to a running broker's dynamic-security plugin, over one short MQTT connection each time."""

    def __init__(self, connection: BrokerConnection, timeout: float = 10.0) -> None:
        if connection.username is None:
            raise ValueError("the broker admin connection needs a username (its account is bound to that client id)")
        self.connection, self.timeout = connection, timeout
        self._lock = threading.Lock()  # one connection at a time: the account has one client id

    def run(self, commands: list[dict[str, Any]], tolerate: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Send ``commands`` and wait for the answers; BrokerError on any error not in ``tolerate``."""
        with self._lock:
            answers = self._exchange(commands)
        errors = [f"{a.get('command')}: {a['error']}" for a in answers if a.get("error") and a["error"] not in tolerate]
        if errors:
            raise BrokerError("the broker refused: " + "; ".join(errors))
        return answers

    def _exchange(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        assert self.connection.username is not None
        client = new_client(self.connection, self.connection.username)
        connected, subscribed, answered = threading.Event(), threading.Event(), threading.Event()
        answers: list[dict[str, Any]] = []
        refusal: list[str] = []

        def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            if reason.is_failure:
                refusal.append(str(reason))
            connected.set()

        def on_message(_c: Any, _u: Any, message: Any) -> None:
            try:
                answers.extend(json.loads(message.payload).get("responses", []))
            except (ValueError, AttributeError):
                return
            answered.set()

        client.on_connect = on_connect
        client.on_subscribe = lambda *_args: subscribed.set()
        client.on_message = on_message
        where = f"{self.connection.host}:{self.connection.port}"
        try:
            client.connect(self.connection.host, self.connection.port, self.connection.keepalive)
            client.loop_start()
            if not connected.wait(self.timeout) or refusal:
                raise BrokerError(f"the broker at {where} refused the admin account ({', '.join(refusal)})"
                                  if refusal else f"no answer from the broker at {where}")
            client.subscribe(RESPONSE, qos=1)
            if not subscribed.wait(self.timeout):
                raise BrokerError(f"the broker at {where} did not answer the subscription")
            client.publish(CONTROL, json.dumps({"commands": commands}).encode(), qos=1)
            if not answered.wait(self.timeout):
                raise BrokerError("the broker's dynamic-security plugin did not answer (is this account of role "
                                  "control?)")
        except OSError as exc:
            raise BrokerError(f"cannot reach the broker: {exc}") from None
        finally:
            client.disconnect()
            client.loop_stop()
        return answers


class BrokerAccounts:
    """Where unit account changes go: the accounts file (if known) and the running broker (if an admin is set)."""

    def __init__(self, accounts_file: Path | None = None, control: DynsecControl | None = None) -> None:
        self.accounts_file, self.control = accounts_file, control

    @property
    def live(self) -> bool:
        """Whether changes reach the running broker at once (else: at its next restart)."""
        return self.control is not None

    def add(self, user: BrokerUser, password: str, devices: Sequence[BrokerUser]) -> None:
        """A new unit account (``devices``: every unit account, the new one included)."""
        rolename = f"{user.role}-{user.name}"
        self._apply(devices, [
            {"command": "createRole", "rolename": rolename, "textname": user.role, "acls": role_acls(user)},
            {"command": "createClient", "username": user.name, "password": password, "clientid": user.name,
             "textname": user.role, "roles": [{"rolename": rolename, "priority": 0}]},
        ])

    def remove(self, name: str, devices: Sequence[BrokerUser]) -> None:
        """Remove a unit's account and disconnect it (``devices``: the unit accounts that remain)."""
        self._apply(devices, [{"command": "deleteClient", "username": name},
                              {"command": "deleteRole", "rolename": f"device-{name}"}], tolerate=GONE)

    def _apply(self, devices: Sequence[BrokerUser], commands: list[dict[str, Any]],
               tolerate: Sequence[str] = ()) -> None:
        """The one way changes reach the broker: the running one first (its answer is awaited), then the file.
        A new account the broker could not take goes nowhere; a removal reaches the file even then."""
        adding = commands[0]["command"] == "createRole"
        refused: BrokerError | None = None
        if self.control is not None:
            try:
                self.control.run(commands, tolerate)
            except BrokerError as exc:
                if adding:
                    raise
                refused = exc
        if self.accounts_file is not None:
            try:
                refresh_accounts_file(self.accounts_file, devices)
            except (OSError, ValueError) as exc:
                if self.control is not None and adding:  # undo the new account on the running broker
                    self.control.run([{"command": "deleteClient", "username": commands[1]["username"]},
                                      {"command": "deleteRole", "rolename": commands[0]["rolename"]}], GONE)
                raise BrokerError(f"the accounts file {self.accounts_file} could not be rewritten: {exc}") from None
        if refused is not None:
            raise refused
