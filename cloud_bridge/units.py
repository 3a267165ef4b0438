"""What the bridge knows of each unit beyond its registry row: versions, revocation, the fleet's minimum
software version; and what follows from them for pairing and ingest (no Flask, no broker here).

The minimum software version a unit needs to be paired is the higher of the config's floor
(``fleet.min_software_version``) and the one staff set at run time; a unit whose version is unknown (added
with ``device add``, never enrolled) is below any minimum."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from cloud_bridge.store.models import FleetSetting, Unit

VERSION = re.compile(r"^[0-9]+(\.[0-9]+){0,3}([+-][A-Za-z0-9.]{1,20})?$")  # 1.4, 1.4.2, 1.4.2-rc1, 1.4.2+abc
MIN_VERSION = "min_software_version"


def version_key(version: str) -> tuple[int, ...]:
    """The numeric release of a version (``1.4.2-rc1`` -> (1, 4, 2)); ValueError if it is not a version."""
    if not VERSION.fullmatch(version):
        raise ValueError(f"{version[:40]!r} is not a software version (digits and dots, e.g. 1.4.2)")
    release = re.match(r"^[0-9]+(\.[0-9]+)*", version)
    assert release is not None
    numbers = [int(part) for part in release.group(0).split(".")]
    while len(numbers) > 1 and numbers[-1] == 0:  # 1.4 == 1.4.0
        numbers.pop()
    return tuple(numbers)


def at_least(version: str | None, minimum: str | None) -> bool:
    """Whether ``version`` is ``minimum`` or newer; any version passes no minimum, no version passes one."""
    if minimum is None:
        return True
    if version is None or not VERSION.fullmatch(version):
        return False
    return version_key(version) >= version_key(minimum)


def highest(*versions: str | None) -> str | None:
    """The newest of the versions given (None for none)."""
    named = [version for version in versions if version is not None]
    return max(named, key=version_key) if named else None


def stored_minimum(session: Session) -> str | None:
    setting = session.get(FleetSetting, MIN_VERSION)
    return setting.value if setting is not None else None


def effective_minimum(session: Session, floor: str | None) -> str | None:
    return highest(floor, stored_minimum(session))


def pairing_refusal(session: Session, device_id: str, floor: str | None) -> tuple[str, str] | None:
    """Why this unit may not be paired with an exam (reason, detail), or None when it may."""
    unit = session.get(Unit, device_id)
    if unit is not None and unit.revoked_at is not None:
        return "revoked", f"device {device_id} is revoked: enrol it again to use it"
    minimum = effective_minimum(session, floor)
    version = unit.software_version if unit is not None else None
    if not at_least(version, minimum):
        return ("outdated_software", f"device {device_id} runs software {version or 'of unknown version'}; "
                f"exams need {minimum} or newer: update it first")
    return None

