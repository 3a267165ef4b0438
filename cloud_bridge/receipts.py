"""Receipts to units: the highest sequence number up to which every one of a unit's events is stored.

A unit deletes an event from its outbox only on such a receipt (edge_app/link/receipts.py), so what a broker
acknowledged and then lost is sent again. After each stored (or duplicate) event the dispatcher calls
:meth:`Receipts.note`; the receipt, ``cmd/receipt`` signed with the bridge key and addressed to the unit,
goes out after ``every_events`` events of that unit or ``every_seconds``, whichever comes first. The number
is counted from the events table itself (a row for every sequence number from 1 up), not from the chain
watermark, which moves over a hole once it is flagged as a gap: a hole the unit can still fill is never
receipted. Receipts are not kept: a lost one is replaced by the next, or by the answer to the unit's resend.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import exists, func, select
from sqlalchemy.orm import aliased

from cloud_bridge.outbox import Publish
from cloud_bridge.store import Store
from cloud_bridge.store.models import EventRow
from edge_app.protocol import device_topic
from edge_app.protocol.commands import seal

log = logging.getLogger(__name__)


def stored_upto(store: Store, device_id: str, known: int = 0) -> int:
    """The highest n such that the device's events 1..n are all stored, given that 1..``known`` are."""
    with store.session() as session:
        if session.scalar(select(EventRow.id).where(EventRow.device_id == device_id,
                                                    EventRow.seq == known + 1).limit(1)) is None:
            return known
        after = aliased(EventRow)
        # the run from known + 1 ends at the first stored event whose successor is missing
        end = session.scalar(select(func.min(EventRow.seq)).where(
            EventRow.device_id == device_id, EventRow.seq > known,
            ~exists().where(after.device_id == device_id, after.seq == EventRow.seq + 1)))
        return int(end) if end is not None else known


class Receipts:
    def __init__(self, store: Store, publish: Publish, key: Ed25519PrivateKey, *, every_events: int = 50,
                 every_seconds: float = 0.2, clock: Callable[[], float] = time.time) -> None:
        self.store, self.publish, self.key, self.clock = store, publish, key, clock
        self.every_events, self.every_seconds = every_events, every_seconds
        self.sent = 0
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._due: dict[str, tuple[int, float]] = {}  # device -> (events noted since its last receipt, first at)
        self._known: dict[str, int] = {}  # device -> stored up to (only grows)

    def note(self, device_id: str) -> None:
        """An event of ``device_id`` is stored (or arrived again): a receipt is due."""
        with self._lock:
            count, first = self._due.get(device_id, (0, self.clock()))
            self._due[device_id] = (count + 1, first)
            now = count + 1 >= self.every_events
            if now:
                del self._due[device_id]
            else:
                self._wake.notify()
        if now:
            try:
                self.send(device_id)
            except Exception:  # a busy database: the event is stored all the same; the next receipt covers it
                log.exception("receipt for %s not sent", device_id)

    def send(self, device_id: str) -> int:
        """Publish the device's receipt now; its n (nothing is sent for 0)."""
        with self._lock:
            known = self._known.get(device_id, 0)
        n = stored_upto(self.store, device_id, known)
        with self._lock:
            n = max(n, self._known.get(device_id, 0))
            self._known[device_id] = n
        if n == 0:
            return 0
        payload = seal("receipt", {"n": n}, self.key, int(self.clock() * 1000), to=device_id)
        try:
            self.publish(device_topic(device_id, "cmd/receipt"), payload, 1, False)
        except Exception as exc:  # the unit resends after its timeout, and is answered then
            log.warning("receipt %d for %s not published: %s", n, device_id, exc)
            return n
        self.sent += 1
        return n

    def flush(self, everything: bool = False) -> list[str]:
        """Send the receipts that are due (all of them with ``everything``); the devices."""
        now = self.clock()
        with self._lock:
            due = [d for d, (_count, first) in self._due.items() if everything or now - first >= self.every_seconds]
            for device_id in due:
                del self._due[device_id]
        for device_id in due:
            try:
                self.send(device_id)
            except Exception:  # the database is busy: the unit's resend brings the next chance
                log.exception("receipt for %s not sent", device_id)
        return due

    def run(self, stop: threading.Event) -> None:
        """Send due receipts until ``stop`` is set (the bridge's receipts thread)."""
        while not stop.is_set():
            with self._lock:
                self._wake.wait_for(lambda: bool(self._due) or stop.is_set(), timeout=0.5)
            if self._due:
                stop.wait(self.every_seconds / 2)  # let a batch gather
            self.flush()
        self.flush(everything=True)
