"""Each device's sequence numbers and hash chain, checked in any arrival order.

Several consumers share the device topics, so one device's events can be stored out of order. Each event
is therefore checked against its stored neighbours (the previous event's hash must match its ``h``, the
next event's ``h`` must match its hash) whenever either arrives, and a device's ``last_seq`` is the
watermark below which every event is stored. A hole above the watermark is a *gap* only when it has lasted
``gap_after`` seconds: then the first event after it is flagged ``gap`` and the watermark moves on, so each
loss is reported once. Each gap is kept as a Gap record with its reason: ``missing`` for such a hole, or the
reason a unit gave in an ``events_refused`` report for alerts it could not store (``disk_full``). A unit
sends everything unreceipted again after a reconnect, so a flagged hole may fill after all: each of its
events that arrives is counted into its gap (:func:`fill_gaps`), and once all have, the gap is marked filled
(with when) and the event after it loses its ``gap`` flag, so flags stay only where data was really lost.
Ingest checks a whole batch of events with one read of their stored neighbours; within a batch, the events
before an event count as stored, so the outcome is the one-by-one outcome in the batch's order.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import BigInteger, Select, String, and_, any_, bindparam, func, or_, select, union_all, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from cloud_bridge.store.models import Device, EventRow, Gap, Unit
from edge_app.protocol import Event, ProtocolError, chain_hash

Known = dict[tuple[str, int], tuple[bytes, str]]  # (device, seq) -> (payload, h) of events stored or being stored
WALK = 256  # sequence numbers read at a time while the watermark moves
SAVE_DEVICE = (update(Device).where(Device.__table__.c.device_id == bindparam("device"))
               .values(last_seq=bindparam("seq"), last_seen=bindparam("seen")))
_DEVICES, _EVENTS, _UNITS = Device.__table__.c, EventRow.__table__.c, Unit.__table__.c  # Core: plain values
LOCK_DEVICES = (select(_DEVICES.device_id, _DEVICES.public_key, _DEVICES.last_seq, _UNITS.revoked_at.is_not(None))
                .select_from(Device.__table__.outerjoin(Unit.__table__, _UNITS.device_id == _DEVICES.device_id))
                .where(_DEVICES.device_id.in_(bindparam("devices", expanding=True)))
                .order_by(_DEVICES.device_id).with_for_update(of=Device.__table__))


@lru_cache(maxsize=256)
def _read_statement(devices: int) -> Select[str, str, int, bytes, str]:
    """:func:`read_batch`'s query for a batch of events of ``devices`` devices, built once per count (so its
    compiled form is cached): the ids in ``ids``, and device ``d<i>``'s sequence numbers in ``s<i>``."""
    return select(_EVENTS.event_id, _EVENTS.device_id, _EVENTS.seq, _EVENTS.payload, _EVENTS.prev_hash).where(or_(
        _EVENTS.event_id.in_(bindparam("ids", expanding=True)),
        *(and_(_EVENTS.device_id == bindparam(f"d{i}"), _EVENTS.seq.in_(bindparam(f"s{i}", expanding=True)))
          for i in range(devices))))


_READ_COLUMNS = (_EVENTS.event_id, _EVENTS.device_id, _EVENTS.seq, _EVENTS.payload, _EVENTS.prev_hash)
_WANTED = func.unnest(bindparam("devices", type_=ARRAY(String)), bindparam("seqs", type_=ARRAY(BigInteger))
                      ).table_valued("device_id", "seq").render_derived(name="wanted")
# PostgreSQL: the same rows (a row may come twice) from one statement whatever the batch, with one array per
# value: prepared once by the driver, where the IN lists above make new text (parsed and planned anew) for
# every batch size; 2.7 against 5.8 ms a batch of 100 events of 50 units
READ_ARRAYS = union_all(
    select(*_READ_COLUMNS).where(_EVENTS.event_id == any_(bindparam("ids", type_=ARRAY(String)))),
    select(*_READ_COLUMNS).select_from(EventRow.__table__.join(
        _WANTED, and_(_EVENTS.device_id == _WANTED.c.device_id, _EVENTS.seq == _WANTED.c.seq))))


def redelivery(stored: bytes | None, event: Event, payload: bytes) -> bool:
    """True when ``stored`` (the bytes kept under the event's id) are exactly ``payload`` (the unit sent it again:
    idempotent); False when nothing is stored under the id; ProtocolError ``reused_id`` for other content."""
    if stored is None:
        return False
    if stored != payload:
        raise ProtocolError("reused_id", f"event id {event.event_id} is stored already with other content")
    return True


def is_redelivery(session: Session, event: Event, payload: bytes) -> bool:
    """:func:`redelivery` against the store."""
    stored = session.scalar(select(EventRow.payload).where(EventRow.event_id == event.event_id))
    return redelivery(bytes(stored) if stored is not None else None, event, payload)


def read_batch(session: Session, events: Iterable[Event]) -> tuple[dict[str, bytes], Known]:
    """In one query for a whole batch: the bytes stored under each event's id (a redelivery, or a reused id),
    and the stored events at each event's sequence number and one either side (its neighbours)."""
    ids, wanted = set(), dict[str, set[int]]()
    for event in events:
        ids.add(event.event_id)
        wanted.setdefault(event.device_id, set()).update((event.seq - 1, event.seq, event.seq + 1))
    if not ids:
        return {}, {}
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        pairs = [(device_id, seq) for device_id, seqs in wanted.items() for seq in sorted(seqs)]
        rows = connection.execute(READ_ARRAYS, {"ids": sorted(ids), "devices": [device for device, _ in pairs],
                                                "seqs": [seq for _, seq in pairs]})
    else:
        values: dict[str, object] = {"ids": list(ids)}
        for i, (device_id, seqs) in enumerate(wanted.items()):
            values[f"d{i}"], values[f"s{i}"] = device_id, sorted(seqs)
        rows = connection.execute(_read_statement(len(wanted)), values)
    payloads: dict[str, bytes] = {}
    known: Known = {}
    for event_id, device_id, seq, payload, prev_hash in rows:
        payloads[event_id] = bytes(payload)
        if seq in wanted.get(device_id, ()):
            known.setdefault((device_id, seq), (bytes(payload), prev_hash))
    return payloads, known


def neighbour_flag(known: Known, event: Event, payload: bytes) -> str | None:
    """``replayed`` (this sequence number is stored already under another id), ``broken_chain`` (a neighbour's
    hash does not match: altered history) or None; ``known`` holds the neighbours (:func:`read_batch`)."""
    here, before, after = ((event.device_id, event.seq + step) for step in (0, -1, 1))
    if here in known:
        return "replayed"
    if before in known and chain_hash(known[before][0]) != event.prev_hash:
        return "broken_chain"
    if after in known and known[after][1] != chain_hash(payload):
        return "broken_chain"
    return None


def refused_gap(session: Session, event: Event, now: float) -> str:
    """Keep a unit's ``events_refused`` report as a gap with its reason; the reason (the event's flag)."""
    assert event.refused is not None and event.refused_reason is not None
    count, first, last = event.refused
    session.add(Gap(device_id=event.device_id, reason=event.refused_reason, count=count, first_at=float(first),
                    last_at=float(last), event_id=event.event_id, found_at=now))
    return event.refused_reason


@dataclass
class Locked:
    """A device's row as a batch holds it locked: its key and its watermark (which the batch may move), and
    whether its unit is revoked (its fleet record says so; a device without one is not)."""

    device_id: str
    public_key: str
    last_seq: int
    revoked: bool = False


def lock_devices(session: Session, device_ids: Collection[str]) -> dict[str, Locked]:
    """The rows of those of ``device_ids`` that are registered, locked for the transaction: ``FOR UPDATE`` in one
    order on PostgreSQL (one device's events are checked by one transaction at a time); on SQLite the
    transaction holds the database's write lock from its start already. Read with the units' revocations."""
    rows = session.connection().execute(LOCK_DEVICES, {"devices": list(device_ids)})
    return {device_id: Locked(device_id, public_key, last_seq, bool(revoked))
            for device_id, public_key, last_seq, revoked in rows}


def save_devices(session: Session, devices: Collection[Locked], seen_at: float) -> None:
    """Save the watermarks of the devices a batch stored events of, seen at ``seen_at`` (one cached statement)."""
    if devices:
        session.connection().execute(SAVE_DEVICE, [{"device": d.device_id, "seq": d.last_seq, "seen": seen_at}
                                                   for d in devices])


def advance_all(session: Session, devices: Collection[Locked], known: Known, read: dict[str, set[int]]) -> None:
    """Move the watermarks of ``devices`` over every stored event right above them (events just stored
    included). Each is walked through ``known`` (its stored events and their neighbours) first, without a
    read: when the walk stops before a number in ``read`` (those read into ``known`` per device, under the
    device's lock), that number is not stored. The others go on in one query for all of them (``WALK``
    numbers above each watermark at a time), not one each."""
    walking = []
    for device in devices:
        while (device.device_id, device.last_seq + 1) in known:
            device.last_seq += 1
        if device.last_seq + 1 not in read.get(device.device_id, ()):
            walking.append(device)
    table = EventRow.__table__.c
    while walking:
        rows = session.connection().execute(select(table.device_id, table.seq).where(or_(*(and_(
            table.device_id == device.device_id, table.seq > device.last_seq, table.seq <= device.last_seq + WALK)
            for device in walking))).order_by(table.device_id, table.seq)).all()
        seqs: dict[str, list[int]] = {}
        for device_id, seq in rows:
            seqs.setdefault(device_id, []).append(seq)
        again = []
        for device in walking:
            start = device.last_seq
            for seq in seqs.get(device.device_id, []):
                if seq > device.last_seq + 1:
                    break
                device.last_seq = seq  # a replayed number comes twice: the second is no step
            if device.last_seq == start + WALK:  # the whole window was stored: read on
                again.append(device)
        walking = again


def flag_gaps(session: Session, now: float, gap_after: float) -> list[Gap]:
    """Flag holes older than ``gap_after`` seconds, every one of a device's in one run; the Gap kept for each."""
    found: list[Gap] = []
    devices = session.scalars(select(Device.device_id).join(
        EventRow, (EventRow.device_id == Device.device_id) & (EventRow.seq > Device.last_seq)).distinct()).all()
    for device_id in sorted(devices):  # locked in the order batches lock them (no deadlock), and read again
        device = session.get(Device, device_id, with_for_update=True, populate_existing=True)
        assert device is not None  # devices are never deleted
        while True:  # each hole in turn, lowest first: the watermark moves over what is stored above it
            first_after = session.scalar(select(func.min(EventRow.seq)).where(EventRow.device_id == device_id,
                                                                              EventRow.seq > device.last_seq))
            row = session.scalar(select(EventRow).where(EventRow.device_id == device_id, EventRow.seq == first_after))
            if first_after is None or row is None or row.received_at > now - gap_after:
                break
            gap = Gap(device_id=device_id, reason="missing", count=first_after - 1 - device.last_seq,
                      first_seq=device.last_seq + 1, last_seq=first_after - 1, event_id=row.event_id, found_at=now)
            session.add(gap)
            found.append(gap)
            row.flag = row.flag or "gap"
            walker = Locked(device_id, device.public_key, first_after)  # on over what is stored above the hole
            advance_all(session, [walker], {}, {})
            device.last_seq = walker.last_seq
    return found


def fill_gaps(session: Session, arrived: Collection[tuple[str, int]], now: float) -> list[Gap]:
    """Count events that arrived below their device's watermark, ``arrived`` as (device, seq) and stored in this
    transaction, into the flagged holes they fall in; a gap all of whose events are now stored is marked filled
    ``now``, and its ``gap`` flag is taken off the event after it. The gaps filled."""
    by_device: dict[str, set[int]] = {}
    for device_id, seq in arrived:
        by_device.setdefault(device_id, set()).add(seq)
    filled = []
    for device_id, seqs in sorted(by_device.items()):
        gaps = session.scalars(select(Gap).where(
            Gap.device_id == device_id, Gap.reason == "missing", Gap.filled_at.is_(None),
            Gap.first_seq <= max(seqs), Gap.last_seq >= min(seqs))).all()
        for gap in gaps:
            assert gap.first_seq is not None and gap.last_seq is not None  # a missing gap has its numbers
            if not any(gap.first_seq <= seq <= gap.last_seq for seq in seqs):
                continue
            gap.filled = session.scalar(select(func.count(func.distinct(EventRow.seq))).where(
                EventRow.device_id == device_id, EventRow.seq.between(gap.first_seq, gap.last_seq))) or 0
            if gap.filled >= gap.count:
                gap.filled_at = now
                session.execute(update(EventRow).where(EventRow.event_id == gap.event_id, EventRow.flag == "gap")
                                .values(flag=None))
                filled.append(gap)
    return filled
