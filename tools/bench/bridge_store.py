"""The bridge bench's stores as a bridge in service has them: earlier exams' events of other units already
stored, and on PostgreSQL the planner statistics that autovacuum (or the bridge's own sweep,
``Store.refresh_statistics``) keeps. A bench into an empty, never analysed table measures the first seconds of a
new deployment instead: there PostgreSQL read whole tables for a few rows. The run's own rows are counted apart."""

from __future__ import annotations

from sqlalchemy import func, insert, select, text

from cloud_bridge.store import Store
from cloud_bridge.store.models import Device, EventRow

PAST_DEVICES = 50  # units of earlier exams
PAST_EVENTS = 400  # events each of them stored
PAST = "past-"  # their ids' prefix: never a simulated device's
PAYLOAD = b"x" * 360  # about an event's size


def in_service(store: Store) -> int:
    """Store the earlier exams' events (one transaction), then analyse on PostgreSQL; the rows written."""
    with store.engine.begin() as connection:
        connection.execute(insert(Device), [
            {"device_id": f"{PAST}{d:03d}", "public_key": "", "last_seq": PAST_EVENTS, "status": "offline"}
            for d in range(PAST_DEVICES)])
        connection.execute(insert(EventRow), [
            {"event_id": f"{PAST}{d:03d}-{n:05d}", "device_id": f"{PAST}{d:03d}", "seq": n, "time_ms": n * 1000,
             "kind": "gaze_away", "phase": "start" if n % 2 else "end", "severity": "warning", "confidence": 0.8,
             "alert_id": f"{PAST}{d:03d}-{n - 1 + n % 2:05d}", "evidence": None, "flag": None, "prev_hash": "h",
             "payload": PAYLOAD, "received_at": 0.0}
            for d in range(PAST_DEVICES) for n in range(1, PAST_EVENTS + 1)])
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect() as connection:
            connection.execute(text("ANALYZE devices, events"))  # in the URL's schema (its search_path)
            connection.commit()
    return PAST_DEVICES * PAST_EVENTS


def stored_rows(store: Store) -> int:
    """The events the run stored (the earlier exams' left out)."""
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(EventRow)
                                  .where(EventRow.device_id.not_like(f"{PAST}%"))) or 0)


def chain_flags(store: Store) -> dict[str, int]:
    """The run's events by chain flag (gap, broken_chain, ...)."""
    with store.session() as session:
        return {str(flag): int(n) for flag, n in session.execute(
            select(EventRow.flag, func.count()).where(EventRow.flag.is_not(None),
                                                      EventRow.device_id.not_like(f"{PAST}%"))
            .group_by(EventRow.flag))}
