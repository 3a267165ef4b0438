"""Why the broker refused a connection: this unit's credentials, or something waiting may fix.

A broker that refuses the credentials (staff revoked the unit and the bridge removed its broker account, or
the password is wrong) will refuse every retry: the link then backs off further (up to
``refused_backoff_max``) and tells the unit, which shows it on its page and its LED. Any other refusal
(server unavailable, busy, quota) is transient and retried as a lost connection is.

paho hands MQTT 3.1.1's CONNACK return codes over as MQTT 5 reason codes (4 as 0x86, 5 as 0x87), so one
table serves both protocols; a bare int is read as a 3.1.1 return code.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable

from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger(__name__)
# MQTT 5 CONNACK reason codes that say the broker will not take this unit as it is
CREDENTIAL_CODES = frozenset({
    0x86,  # Bad user name or password
    0x87,  # Not authorized
    0x8A,  # Banned
    0x8C,  # Bad authentication method
})
CREDENTIAL_CODES_311 = frozenset({4, 5})  # bad user name or password, not authorized


class Refusal(enum.Enum):
    CREDENTIALS = "credentials"  # waiting will not fix it: staff must re-enrol the unit
    OTHER = "other"  # server unavailable, busy, ...: retried as a lost connection


def classify(reason: ReasonCode | int) -> Refusal | None:
    """None when the CONNACK accepts the connection, else why it refused."""
    if isinstance(reason, ReasonCode):
        if not reason.is_failure:
            return None
        return Refusal.CREDENTIALS if reason.value in CREDENTIAL_CODES else Refusal.OTHER
    if reason == 0:
        return None
    return Refusal.CREDENTIALS if reason in CREDENTIAL_CODES_311 else Refusal.OTHER


def describe(reason: ReasonCode | int) -> str:
    """The broker's reason in words (paho's name for it), as logged and shown."""
    return str(reason) if isinstance(reason, ReasonCode) else f"return code {reason}"


class RefusalState:
    """One link's refusals: each change logged once (not every retry), and a refusal of the credentials, and
    its end, told to ``report`` (the broker's reason, then None); ``longest``: the refused retries' cap."""

    def __init__(self, name: str, longest: float, report: Callable[[str | None], None] | None = None) -> None:
        self.name, self.longest, self.report = name, longest, report
        self.logged: str | None = None  # the last refusal logged
        self.credentials: str | None = None  # why the broker refuses the credentials; None: it does not

    def connack(self, reason: ReasonCode | int) -> Refusal | None:
        """Take a CONNACK: None when it accepts (a refusal before it ends), else why it refused."""
        refusal = classify(reason)
        if refusal is None:
            if self.logged is not None:
                log.info("MQTT link %s: the broker accepts the connection again", self.name)
            self.logged = None
            self._tell(None)
            return None
        text = describe(reason)
        if text != self.logged:
            self.logged = text
            wait = (f"; this unit's credentials (revoked, or a wrong password): retries up to {self.longest:g} s "
                    "apart" if refusal is Refusal.CREDENTIALS else "")
            log.warning("MQTT link %s: broker refused the connection: %s%s", self.name, text, wait)
        else:
            log.debug("MQTT link %s: broker refused the connection again: %s", self.name, text)
        if refusal is Refusal.CREDENTIALS:
            self._tell(text)
        return refusal

    def _tell(self, reason: str | None) -> None:
        if reason == self.credentials:
            return
        self.credentials = reason
        if self.report is None:
            return
        try:
            self.report(reason)
        except Exception:  # the unit's own reporting never stops the link
            log.exception("MQTT link %s: the refusal was not reported", self.name)
