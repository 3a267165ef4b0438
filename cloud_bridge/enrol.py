"""One-time enrolment codes and the enrolment of a new unit with one.

Staff issue a code (``POST /api/v1/enrol-codes`` or ``python -m cloud_bridge enrol-code``): 12 characters
of an alphabet without look-alikes, shown in groups of four, valid for ``ttl`` seconds and for one unit;
only its SHA-256 is kept. A unit on first boot generates its Ed25519 key pair and sends the code, its device
id (or lets the code's, or the bridge, choose one), its public key and its versions; it receives its own broker
account with a fresh random password, returned this once (only its hash is kept), and where the broker is
(with TLS, and the CA to verify it by when the bridge is given one: ``fleet.unit_broker_ca_file``).
The unit's rows, the code's use and the broker account are made together or not at all.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from cloud_bridge import audit
from cloud_bridge.broker import BrokerUser, hash_password, new_password
from cloud_bridge.broker_admin import BrokerAccounts, BrokerError, device_users
from cloud_bridge.refusal import Refused, refuse_unknown
from cloud_bridge.store import Store
from cloud_bridge.store.models import Device, EnrolCode, Unit
from cloud_bridge.units import VERSION
from edge_app.protocol import DEVICE_ID
from edge_app.protocol.commands import NAME, PAIR_CODE_ALPHABET
from edge_app.protocol.transport import ca_bundle

CODE_LENGTH, GROUP = 12, 4  # about 59 bits
MAX_TTL = 30 * 86_400.0
MAX_KEY_CHARS = 1000


class EnrolError(Refused):
    """An enrolment or a code that cannot be had: ``reason`` (a short code) and the HTTP ``status``."""


@dataclass(frozen=True)
class BrokerAddress:
    """Where units connect (told to a unit at enrolment); ``ca_pem``: the CA certificate(s) a unit verifies the
    broker by (PEM, edge_app.protocol.transport.ca_bundle's), only with TLS; None: the unit's system CAs."""

    host: str
    port: int
    tls: bool
    ca_pem: str | None = None

    def __post_init__(self) -> None:
        if self.ca_pem is not None:
            if not self.tls:
                raise ValueError("a CA for units needs TLS: units connect without it")
            object.__setattr__(self, "ca_pem", ca_bundle(self.ca_pem))  # certificates only, never a key

    def told(self) -> dict[str, Any]:
        """The enrolment answer's ``broker``."""
        told: dict[str, Any] = {"host": self.host, "port": self.port, "tls": self.tls}
        if self.tls and self.ca_pem is not None:
            told["ca_pem"] = self.ca_pem
        return told


def new_code() -> str:
    raw = "".join(secrets.choice(PAIR_CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i:i + GROUP] for i in range(0, CODE_LENGTH, GROUP))


def normalize(typed: object) -> str | None:
    """A code as typed (any case, spaces, dashes) in canonical form, or None if it cannot be one."""
    if not isinstance(typed, str) or len(typed) > 40:
        return None
    code = re.sub(r"[\s-]", "", typed).upper()
    if len(code) != CODE_LENGTH or any(ch not in PAIR_CODE_ALPHABET for ch in code):
        return None
    return code


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _public_key(pem: object) -> str:
    if not isinstance(pem, str) or len(pem) > MAX_KEY_CHARS:
        raise EnrolError("invalid", "public_key (the unit's Ed25519 public key, PEM) is required")
    try:
        key = load_pem_public_key(pem.encode())
    except ValueError:
        raise EnrolError("invalid", "public_key is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise EnrolError("invalid", "public_key must be an Ed25519 key")
    return pem


def _versions(software: object, model: object) -> tuple[str, str]:
    if not isinstance(software, str) or not VERSION.fullmatch(software) or len(software) > 32:
        raise EnrolError("invalid", "software_version must be a version such as 1.4.2")
    if not isinstance(model, str) or not NAME.fullmatch(model):
        raise EnrolError("invalid", "model_version must be 1-64 of letters, digits, '.', '_' and '-'")
    return software, model


class Enrolment:
    def __init__(self, store: Store, accounts: BrokerAccounts, broker: BrokerAddress, bridge_key_pem: str | None = None,
                 code_ttl: float = 86_400.0, clock: Callable[[], float] = time.time) -> None:
        self.store, self.accounts, self.broker, self.bridge_key_pem = store, accounts, broker, bridge_key_pem
        self.code_ttl, self.clock = code_ttl, clock

    def issue(self, actor: str, device_id: object = None, ttl: object = None, label: object = "") -> dict[str, Any]:
        """A new code (shown this once), audited as ``actor``; ``device_id``: the id the unit must take."""
        if device_id is not None and (not isinstance(device_id, str) or not DEVICE_ID.fullmatch(device_id)):
            raise EnrolError("invalid", "device_id must be 3-14 of a-z, 0-9 and '-', starting with a letter or digit")
        seconds = self.code_ttl if ttl is None else ttl
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 60 <= seconds <= MAX_TTL:
            raise EnrolError("invalid", f"ttl must be 60 to {MAX_TTL:.0f} seconds")
        if not isinstance(label, str) or len(label) > 64 or any(not ch.isprintable() for ch in label):
            raise EnrolError("invalid", "label must be up to 64 printable characters")
        code, now = new_code(), self.clock()
        with self.store.session() as session, session.begin():
            if device_id is not None and session.get(Device, device_id) is not None:
                raise EnrolError("device_exists", f"device {device_id} is registered already", 409)
            row = EnrolCode(code_hash=code_hash(normalize(code) or ""), device_id=device_id, label=label,
                            created_by=actor[:64], created_at=now, expires_at=now + float(seconds))
            session.add(row)
            session.flush()
            audit.record(session, actor, "issue_code", f"code:{row.id}",
                         {"device_id": device_id, "expires_at": row.expires_at, "label": label}, at=now)
            return {"id": row.id, "code": code, "device_id": device_id, "expires_at": row.expires_at, "label": label}

    def enrol(self, body: dict[str, Any]) -> dict[str, Any]:
        """Enrol a unit with a code: its device id, broker credentials (the password only here) and address."""
        refuse_unknown(body, {"code", "device_id", "public_key", "software_version", "model_version"}, EnrolError)
        code = normalize(body.get("code"))
        if code is None:
            raise EnrolError("bad_code", f"an enrolment code is {CODE_LENGTH} of {PAIR_CODE_ALPHABET} "
                             "(dashes and spaces allowed)")
        wanted = body.get("device_id")
        if wanted is not None and (not isinstance(wanted, str) or not DEVICE_ID.fullmatch(wanted)):
            raise EnrolError("invalid", "device_id must be 3-14 of a-z, 0-9 and '-', starting with a letter or digit")
        pem = _public_key(body.get("public_key"))
        software, model = _versions(body.get("software_version"), body.get("model_version"))
        password, now = new_password(), self.clock()
        added: str | None = None
        remaining: list[BrokerUser] = []
        try:
            with self.store.write_transaction() as session:  # SQLite: the write lock before the code is read
                row = session.scalar(select(EnrolCode).where(EnrolCode.code_hash == code_hash(code))
                                     .with_for_update())
                device_id = self._check(row, wanted, now)
                assert row is not None
                if session.get(Device, device_id) is not None:
                    raise EnrolError("device_exists", f"device {device_id} is registered already: choose another "
                                     "id (a revoked unit enrols again under a new one)", 409)
                user = BrokerUser(device_id, hash_password(password), "device")
                session.add(Device(device_id=device_id, public_key=pem, last_seq=0, status="unknown",
                                   mqtt_password_hash=user.password_hash))
                session.flush()  # the unit row's foreign key needs the device first (PostgreSQL)
                session.add(Unit(device_id=device_id, software_version=software, model_version=model,
                                 enrolled_at=now))
                row.used_at, row.used_by = now, device_id
                audit.record(session, f"code:{row.id}", "enrol", device_id,
                             {"software_version": software, "model_version": model}, at=now)
                session.flush()
                devices = device_users(session)
                remaining = [other for other in devices if other.name != device_id]
                self.accounts.add(user, password, devices)
                added = device_id
        except BrokerError as exc:
            raise EnrolError("broker_unavailable", f"the unit's broker account could not be made: {exc}", 503) from None
        except DBAPIError:
            if added is not None:  # the commit failed after the broker took the account: take it back
                self.accounts.remove(added, remaining)
            raise
        return {"device_id": device_id, "username": device_id, "password": password,
                "broker": self.broker.told(),
                "bridge_public_key": self.bridge_key_pem}

    @staticmethod
    def _check(row: EnrolCode | None, wanted: str | None, now: float) -> str:
        """The device id the unit gets with this code; EnrolError when the code cannot be used."""
        if row is None:
            raise EnrolError("unknown_code", "no such enrolment code: check it, or ask staff for a new one", 403)
        if row.used_at is not None:
            raise EnrolError("used_code", "this enrolment code has been used already: ask staff for a new one", 409)
        if row.expires_at < now:
            raise EnrolError("expired_code", "this enrolment code has expired: ask staff for a new one", 410)
        if row.device_id is not None:
            if wanted is not None and wanted != row.device_id:
                raise EnrolError("wrong_device", f"this code is for device {row.device_id}, not {wanted}", 409)
            return row.device_id
        return wanted or "unit-" + "".join(secrets.choice("abcdefghjkmnpqrstuvwxyz23456789") for _ in range(8))
