"""The exam PC's own events (focus lost, screen share stopped, second monitor...), stored beside the unit's.

Creating a session gives the PC exam client a one-time secret, its ``pc_token`` (only the SHA-256 is kept on
the session); the client posts batches of events with it. Each event is ``{"kind", "t", "detail"}``: one of
:data:`KINDS`, the PC's clock in ms since 1970, and an optional small JSON object."""

from __future__ import annotations

import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from cloud_bridge.refusal import Refused
from cloud_bridge.store import Store
from cloud_bridge.store.models import ExamSession, PcEvent
from cloud_bridge.tokens import token_hash

KINDS = ("focus_lost", "focus_back", "screen_share_stopped", "screen_share_started", "second_monitor",
         "copy_paste", "answer_submitted")
MAX_BATCH = 100  # events per request
MAX_DETAIL_BYTES = 1024  # one event's detail, as JSON
MAX_PER_SESSION = 10_000  # a PC that posts more is broken (or hostile): the rest is refused
MAX_T = 2**53  # ms: any PC clock, and a JSON number a browser reads exactly
TOKEN_BYTES = 32


class PcEventError(Refused):
    """A refused batch: ``reason`` a short code, ``status`` the HTTP status."""


@dataclass(frozen=True)
class PcEventView:
    id: int
    kind: str
    t: int  # ms since 1970, the PC's clock
    detail: dict[str, Any] | None
    received_at: float

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "t": self.t, "detail": self.detail, "received_at": self.received_at}


def issue_token(store: Store, session_id: str) -> str:
    """A new secret for the session's PC client (replacing any earlier one); only its hash is kept."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with store.session() as session, session.begin():
        row = session.get(ExamSession, session_id, with_for_update=True)
        if row is None:
            raise PcEventError("not_found", f"no session {session_id}", 404)
        row.pc_token_hash = token_hash(token)
    return token


def _event(index: int, item: object) -> tuple[str, int, str | None]:
    where = f"events[{index}]"
    if not isinstance(item, dict):
        raise PcEventError("invalid", f"{where} must be an object {{kind, t, detail}}")
    unknown = set(item) - {"kind", "t", "detail"}
    if unknown:
        raise PcEventError("invalid", f"{where}: unknown fields: {', '.join(sorted(map(str, unknown)))}")
    kind, t, detail = item.get("kind"), item.get("t"), item.get("detail")
    if kind not in KINDS:
        raise PcEventError("invalid", f"{where}.kind must be one of {', '.join(KINDS)}")
    if not isinstance(t, int) or isinstance(t, bool) or not 0 <= t < MAX_T:
        raise PcEventError("invalid", f"{where}.t must be the PC's clock in ms since 1970 (an integer)")
    if detail is not None and not isinstance(detail, dict):
        raise PcEventError("invalid", f"{where}.detail, if any, must be an object")
    text = json.dumps(detail, separators=(",", ":"), sort_keys=True) if detail else None
    if text is not None and len(text.encode()) > MAX_DETAIL_BYTES:
        raise PcEventError("too_large", f"{where}.detail is over {MAX_DETAIL_BYTES} bytes of JSON", 413)
    return str(kind), t, text


def parse_batch(body: object) -> list[tuple[str, int, str | None]]:
    """The events of a request body ``{"events": [...]}``; PcEventError says what is wrong."""
    if not isinstance(body, dict) or set(body) != {"events"}:
        raise PcEventError("invalid", "the body is {\"events\": [{\"kind\": ..., \"t\": ms, \"detail\": {...}}]}")
    events = body["events"]
    if not isinstance(events, list) or not events:
        raise PcEventError("invalid", "events must be a non-empty list")
    if len(events) > MAX_BATCH:
        raise PcEventError("too_large", f"at most {MAX_BATCH} events per request", 413)
    return [_event(index, item) for index, item in enumerate(events)]


class PcEvents:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store, self.clock = store, clock

    def post(self, session_id: str, token: str, body: object) -> int:
        """Store a batch for the session whose PC token this is; how many were stored. PcEventError: 401 for
        a wrong token (or unknown session: the same answer), 409 for an ended session, 400/413 for the body."""
        batch = parse_batch(body)
        now = self.clock()
        with self.store.session() as session, session.begin():
            row = session.get(ExamSession, session_id[:32], with_for_update=True)
            expected = row.pc_token_hash if row is not None and row.pc_token_hash else "-" * 64
            if not hmac.compare_digest(expected, token_hash(token)) or row is None:
                raise PcEventError("unauthorized", "a valid pc_token of this session is required "
                                   "(Authorization: Bearer <pc_token>, given when the session was created)", 401)
            if row.state == "ended":
                raise PcEventError("ended", f"session {session_id} has ended: it takes no more PC events", 409)
            stored = session.scalar(select(func.count(PcEvent.id)).where(PcEvent.session_id == row.session_id))
            if (stored or 0) + len(batch) > MAX_PER_SESSION:
                raise PcEventError("too_many", f"a session keeps at most {MAX_PER_SESSION} PC events", 409)
            session.add_all([PcEvent(session_id=row.session_id, kind=kind, time_ms=t, detail=detail,
                                     received_at=now) for kind, t, detail in batch])
        return len(batch)

    def of(self, session_id: str) -> list[PcEventView]:
        """The session's PC events in the PC's time order."""
        with self.store.session() as session:
            rows = session.scalars(select(PcEvent).where(PcEvent.session_id == session_id)
                                   .order_by(PcEvent.time_ms, PcEvent.id)).all()
            return [PcEventView(row.id, row.kind, row.time_ms, json.loads(row.detail) if row.detail else None,
                                row.received_at) for row in rows]
