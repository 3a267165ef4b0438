"""A session's events as a JSON-lines export that anyone verifies offline (cloud_bridge/verify.py describes the
format and the checks): the unit's signed events with their hash chain, the unit's public key, the holes the
bridge knew of, sealed by the bridge's key.

A session's events are its unit's events from the first to the last one that became one of the session's
proctor alerts, every one in between included, so the chain is unbroken except where events never arrived
(those holes are declared, with the gap reason the bridge recorded, or ``missing``).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from cloud_bridge.store import Store
from cloud_bridge.store.models import Device, EventRow, ExamSession, Gap, ProctorAlert
from cloud_bridge.verify import FORMAT, seal_digest
from edge_app.protocol.encoding import b64
from edge_app.protocol.keys import public_pem


class ExportError(ValueError):
    """No such session, or nothing of it to export."""


def _line(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).encode("ascii") + b"\n"


def _holes(seqs: list[int]) -> list[tuple[int, int]]:
    return [(a + 1, b - 1) for a, b in itertools.pairwise(seqs) if b > a + 1]


def _reason(gaps: list[Gap], first: int, last: int) -> str:
    for gap in gaps:
        if gap.first_seq is not None and gap.last_seq is not None and gap.first_seq <= first and last <= gap.last_seq:
            return gap.reason
    return "missing"


def export_session(store: Store, session_id: str, key: Ed25519PrivateKey,
                   clock: Callable[[], float] = time.time) -> bytes:
    """The export of ``session_id``, sealed with the bridge's ``key``; ExportError when there is none."""
    with store.session() as session:
        row = session.get(ExamSession, session_id)
        if row is None:
            raise ExportError(f"no session {session_id}")
        if row.device_id is None:
            raise ExportError(f"session {session_id} was never paired with a unit: it has no events")
        device = session.get(Device, row.device_id)
        assert device is not None  # a paired session's device is registered (foreign key)
        first, last = session.execute(
            select(func.min(EventRow.seq), func.max(EventRow.seq)).join(
                ProctorAlert, ProctorAlert.event_id == EventRow.event_id).where(
                ProctorAlert.session_id == session_id)).one()
        events = [] if first is None else session.execute(
            select(EventRow.seq, EventRow.payload).where(EventRow.device_id == row.device_id,
                                                         EventRow.seq.between(first, last))
            .order_by(EventRow.seq)).all()
        gaps = list(session.scalars(select(Gap).where(Gap.device_id == row.device_id)))
        seqs = [seq for seq, _payload in events]
        header = {
            "type": FORMAT, "v": 1, "session": row.session_id, "exam": row.exam_id, "candidate": row.candidate_id,
            "device": row.device_id, "device_key": device.public_key, "bridge_key": public_pem(key),
            "first_seq": seqs[0] if seqs else 0, "last_seq": seqs[-1] if seqs else 0, "events": len(seqs),
            "gaps": [[a, b, _reason(gaps, a, b)] for a, b in _holes(seqs)],
            "exported_at": datetime.fromtimestamp(clock(), UTC).isoformat(timespec="seconds"),
        }
        body = _line(header) + b"".join(_line({"type": "event", "payload": bytes(payload).decode("ascii")})
                                        for _seq, payload in events)
    digest = seal_digest(body)
    return body + _line({"type": "seal", "digest": b64(digest), "sig": b64(key.sign(digest))})
