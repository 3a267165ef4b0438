"""End-to-end delivery on the unit: the bridge's signed receipts delete events; silence resends them.

A broker's PUBACK only says the broker has an event, and a broker can still lose it (a restart that drops
the bridge's shared subscription, a crash before it saved its queue). So the outbox keeps every event until
the bridge's ``receipt`` command (signed with the bridge key, addressed to this unit) says it has stored
every event up to ``n``. When receipts stop moving on while events wait, the link sends everything not yet
receipted again after ``timeout`` seconds (doubling, up to ``timeout * MAX_BACKOFF``, while nothing moves):
the bridge stores an event once, whatever number of times it arrives. A reconnect resends everything
unreceipted too (edge_app.link.mqtt).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge_app.protocol.commands import open_signed

log = logging.getLogger(__name__)
MAX_BACKOFF = 32  # the longest wait between resends, in receipt timeouts, while no receipt moves on


class ReceiptedEvents(Protocol):
    """What receipts need of the outbox (edge_app.link.outbox.Outbox)."""

    def receipt(self, upto_seq: int) -> int: ...

    def count(self) -> int: ...


class Receipts:
    """Applies the bridge's receipts to ``outbox`` and says when unreceipted events are due to go out again."""

    def __init__(self, outbox: ReceiptedEvents, bridge_key: Ed25519PublicKey, device_id: str, timeout: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.outbox, self.bridge_key, self.device_id, self.timeout, self.clock = (
            outbox, bridge_key, device_id, timeout, clock)
        self.stored = 0  # the highest n receipted so far (0: none yet since start)
        self.received = self.refused = self.resends = 0
        self._lock = threading.Lock()
        self._since = clock()  # the last progress (a receipt moving on, a resend, a connect)
        self._backoff = 1

    def handle(self, payload: bytes) -> int | None:
        """One ``cmd/receipt`` payload: the events it covers leave the outbox; its ``n``, or None if refused."""
        if not payload:
            return None
        try:
            n = int(open_signed("receipt", payload, self.bridge_key, to=self.device_id)["n"])
        except ValueError as exc:  # ProtocolError: forged, foreign, malformed; never deletes anything
            self.refused += 1
            log.warning("receipt for %s refused: %s", self.device_id, exc)
            return None
        deleted = self.outbox.receipt(n)
        with self._lock:
            self.received += 1
            if n > self.stored or deleted:
                self.stored = max(self.stored, n)
                self._since, self._backoff = self.clock(), 1
        return n

    def restart(self) -> None:
        """A (re)connect: everything unreceipted goes out again now, so the timeout starts over."""
        with self._lock:
            self._since, self._backoff = self.clock(), 1

    def resend_due(self) -> bool:
        """True (once per timeout) when events wait and no receipt has moved on for the current timeout."""
        now = self.clock()
        with self._lock:
            if now - self._since < self.timeout * self._backoff:
                return False
        if self.outbox.count() == 0:
            with self._lock:
                self._since, self._backoff = now, 1
            return False
        with self._lock:
            self._since = now
            self._backoff = min(MAX_BACKOFF, self._backoff * 2)
            self.resends += 1
        log.info("no receipt for %s within %.1f s: resending every unreceipted event", self.device_id,
                 self.timeout)
        return True
