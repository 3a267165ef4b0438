"""Each device's sequence numbers and hash chain, checked in any arrival order.

Several consumers share the device topics, so one device's events can be stored out of order. Each event
is therefore checked against its stored neighbours (the previous event's hash must match its ``h``, the
next event's ``h`` must match its hash) whenever either arrives, and a device's ``last_seq`` is the
watermark below which every event is stored. A hole above the watermark is a *gap* only when it has lasted
``gap_after`` seconds: then the first event after it is flagged ``gap`` and the watermark moves on, so each
loss is reported once. Each gap is kept as a Gap record with its reason: ``missing`` for such a hole, or the
reason a unit gave in an ``events_refused`` report for alerts it could not store (``disk_full``).
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud_bridge.store.models import Device, EventRow, Gap
from edge_app.protocol import Event, ProtocolError, chain_hash


def is_redelivery(session: Session, event: Event, payload: bytes) -> bool:
    """True when this event id is stored already with exactly these bytes (the unit sent it again: idempotent);
    False when the id is new; ProtocolError ``reused_id`` when the id is stored with other content."""
    stored = session.scalar(select(EventRow.payload).where(EventRow.event_id == event.event_id))
    if stored is None:
        return False
    if bytes(stored) != payload:
        raise ProtocolError("reused_id", f"event id {event.event_id} is stored already with other content")
    return True


def neighbour_flag(session: Session, event: Event, payload: bytes) -> str | None:
    """``replayed`` (this sequence number is stored already under another id), ``broken_chain`` (a neighbour's
    hash does not match: altered history) or None."""
    rows = session.execute(select(EventRow.seq, EventRow.payload, EventRow.prev_hash).where(
        EventRow.device_id == event.device_id, EventRow.seq.in_((event.seq - 1, event.seq, event.seq + 1)))).all()
    by_seq = {seq: (stored, prev_hash) for seq, stored, prev_hash in rows}
    if event.seq in by_seq:
        return "replayed"
    if event.seq - 1 in by_seq and chain_hash(by_seq[event.seq - 1][0]) != event.prev_hash:
        return "broken_chain"
    if event.seq + 1 in by_seq and by_seq[event.seq + 1][1] != chain_hash(payload):
        return "broken_chain"
    return None


def refused_gap(session: Session, event: Event, now: float) -> str:
    """Keep a unit's ``events_refused`` report as a gap with its reason; the reason (the event's flag)."""
    assert event.refused is not None and event.refused_reason is not None
    count, first, last = event.refused
    session.add(Gap(device_id=event.device_id, reason=event.refused_reason, count=count, first_at=float(first),
                    last_at=float(last), event_id=event.event_id, found_at=now))
    return event.refused_reason


def advance(session: Session, device: Device, seq: int | None = None) -> None:
    """Move the device's watermark over ``seq`` (an event being stored) and every stored event right above it."""
    if seq is not None:
        if seq != device.last_seq + 1:
            return  # out of order: the watermark waits for the events below
        device.last_seq = seq
    with session.no_autoflush:
        while session.scalar(select(EventRow.id).where(EventRow.device_id == device.device_id,
                                                       EventRow.seq == device.last_seq + 1)) is not None:
            device.last_seq += 1


def flag_gaps(session: Session, now: float, gap_after: float) -> list[tuple[str, int, int]]:
    """Flag holes older than ``gap_after`` seconds; (device, first missing, last missing) for each."""
    found = []
    devices = session.scalars(select(Device.device_id).join(
        EventRow, (EventRow.device_id == Device.device_id) & (EventRow.seq > Device.last_seq)).distinct()).all()
    for device_id in devices:  # each device locked and read again: a worker may have moved it meanwhile
        device = session.get(Device, device_id, with_for_update=True, populate_existing=True)
        assert device is not None  # devices are never deleted
        first_after = session.scalar(select(func.min(EventRow.seq)).where(EventRow.device_id == device_id,
                                                                          EventRow.seq > device.last_seq))
        row = session.scalar(select(EventRow).where(EventRow.device_id == device_id, EventRow.seq == first_after))
        if first_after is None or row is None or row.received_at > now - gap_after:
            continue
        found.append((device_id, device.last_seq + 1, first_after - 1))
        session.add(Gap(device_id=device_id, reason="missing", count=first_after - 1 - device.last_seq,
                        first_seq=device.last_seq + 1, last_seq=first_after - 1, event_id=row.event_id, found_at=now))
        row.flag = row.flag or "gap"
        device.last_seq = first_after
        advance(session, device)
    return found
