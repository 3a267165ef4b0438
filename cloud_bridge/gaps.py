"""Gaps as staff and proctors see them: each with its range (or the unit's refusal times), its reason, how many
events it lost, and when it was flagged and filled. Shown by ``GET /api/v1/devices/<id>/gaps`` and
``python -m cloud_bridge gaps --device ID``; gaps themselves are found in cloud_bridge/chain.py."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from cloud_bridge.store import Store
from cloud_bridge.store.models import Device, ExamSession, Gap

PAGE, MAX_PAGE = 100, 500  # gaps per answer: by default, at most


def gap_json(gap: Gap) -> dict[str, Any]:
    """One gap: ``lost`` is what is still missing (0 once filled); a ``missing`` gap has its sequence numbers,
    a refused one (``disk_full``, ``store_error``) the unit's first and last refusal instead."""
    return {"id": gap.id, "device_id": gap.device_id, "reason": gap.reason, "count": gap.count,
            "filled": gap.filled or 0, "lost": 0 if gap.filled_at is not None else gap.count - (gap.filled or 0),
            "first_seq": gap.first_seq, "last_seq": gap.last_seq, "first_at": gap.first_at, "last_at": gap.last_at,
            "event_id": gap.event_id, "found_at": gap.found_at, "filled_at": gap.filled_at}


def device_known(store: Store, device_id: str) -> bool:
    with store.session() as session:
        return session.get(Device, device_id) is not None


def device_exams(store: Store, device_id: str) -> set[str]:
    """The exams whose sessions the device has been paired with (what a proctor token must cover)."""
    with store.session() as session:
        return set(session.scalars(select(ExamSession.exam_id).where(ExamSession.device_id == device_id)).all())


def device_gaps(store: Store, device_id: str, after: int = 0, limit: int = PAGE) -> list[dict[str, Any]]:
    """The device's gaps with an id above ``after`` (the cursor), oldest first, at most ``limit``."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be 1 to {MAX_PAGE}, not {limit}")
    with store.session() as session:
        rows = session.scalars(select(Gap).where(Gap.device_id == device_id, Gap.id > after)
                               .order_by(Gap.id).limit(limit)).all()
        return [gap_json(gap) for gap in rows]


def _when(at: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)) if at is not None else "-"


def describe(gap: dict[str, Any]) -> str:
    """One line of ``python -m cloud_bridge gaps``."""
    if gap["reason"] == "missing":
        what = f"events {gap['first_seq']}..{gap['last_seq']} missing ({gap['count']})"
    else:
        what = (f"{gap['count']} alerts refused by the unit ({gap['reason']}) from {_when(gap['first_at'])} "
                f"to {_when(gap['last_at'])}")
    state = (f"filled {_when(gap['filled_at'])}" if gap["filled_at"] is not None
             else f"lost {gap['lost']}" + (f" ({gap['filled']} arrived late)" if gap["filled"] else ""))
    return f"#{gap['id']:<6} {what}; flagged {_when(gap['found_at'])}; {state}"
