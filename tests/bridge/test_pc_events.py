"""The exam PC's events on SQLite and PostgreSQL: only with the session's own pc_token, checked field by field,
limited per batch and per session, none after the end."""

from __future__ import annotations

import pytest

from cloud_bridge import pc_events
from cloud_bridge.pc_events import MAX_BATCH, PcEventError, PcEvents, issue_token
from cloud_bridge.sessions import Sessions
from cloud_bridge.store import Store
from cloud_bridge.store.models import ExamSession, PcEvent
from cloud_bridge.tokens import token_hash
from tests.bridge.parts import PHOTO, count

T = 1_800_000_000_000


def test_a_batch_with_the_sessions_token_is_stored_in_time_order(store: Store, sessions: Sessions) -> None:
    view = sessions.create("math-101", "cand-1", PHOTO)
    token = issue_token(store, view.session_id)
    with store.session() as session:
        row = session.get(ExamSession, view.session_id)
        assert row is not None and row.pc_token_hash == token_hash(token)  # only the hash is kept
    events = PcEvents(store)
    assert events.post(view.session_id, token, {"events": [
        {"kind": "copy_paste", "t": T + 500, "detail": {"chars": 120}}, {"kind": "focus_lost", "t": T}]}) == 2
    assert [(e.kind, e.t, e.detail) for e in events.of(view.session_id)] == [
        ("focus_lost", T, None), ("copy_paste", T + 500, {"chars": 120})]


@pytest.mark.parametrize(("body", "reason", "where"), [
    ({}, "invalid", "the body is"),
    ({"events": []}, "invalid", "non-empty"),
    ({"events": [{"kind": "nap", "t": T}]}, "invalid", "events[0].kind"),
    ({"events": [{"kind": "focus_lost", "t": "soon"}]}, "invalid", "events[0].t"),
    ({"events": [{"kind": "focus_lost", "t": True}]}, "invalid", "events[0].t"),
    ({"events": [{"kind": "focus_lost", "t": -1}]}, "invalid", "events[0].t"),
    ({"events": [{"kind": "focus_lost", "t": T}, {"kind": "focus_lost", "t": T, "x": 1}]}, "invalid", "events[1]"),
    ({"events": [{"kind": "focus_lost", "t": T, "detail": [1]}]}, "invalid", "detail"),
    ({"events": [{"kind": "focus_lost", "t": T, "detail": {"a": "x" * 2000}}]}, "too_large", "detail"),
    ({"events": [{"kind": "focus_lost", "t": T}] * (MAX_BATCH + 1)}, "too_large", "at most"),
])
def test_a_bad_batch_is_refused_whole_saying_what(store: Store, sessions: Sessions, body: object, reason: str,
                                                  where: str) -> None:
    view = sessions.create("math-101", "cand-1", PHOTO)
    token = issue_token(store, view.session_id)
    with pytest.raises(PcEventError) as refused:
        PcEvents(store).post(view.session_id, token, body)
    assert refused.value.reason == reason and where in str(refused.value)
    assert count(store, PcEvent) == 0


def test_another_sessions_token_a_wrong_one_or_none_is_refused(store: Store, sessions: Sessions) -> None:
    one, two = sessions.create("math-101", "cand-1", PHOTO), sessions.create("math-101", "cand-2", PHOTO)
    token_one, _token_two = issue_token(store, one.session_id), issue_token(store, two.session_id)
    untokened = sessions.create("math-101", "cand-3", PHOTO)
    batch = {"events": [{"kind": "focus_lost", "t": T}]}
    for session_id, token in ((two.session_id, token_one), (one.session_id, "guess"), ("nope", token_one),
                              (untokened.session_id, "")):
        with pytest.raises(PcEventError) as refused:
            PcEvents(store).post(session_id, token, batch)
        assert refused.value.status == 401
    assert count(store, PcEvent) == 0


def test_an_ended_session_takes_no_more_and_a_session_has_a_ceiling(store: Store, sessions: Sessions,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    view = sessions.create("math-101", "cand-1", PHOTO)
    token = issue_token(store, view.session_id)
    monkeypatch.setattr(pc_events, "MAX_PER_SESSION", 3)
    batch = {"events": [{"kind": "answer_submitted", "t": T}] * 2}
    PcEvents(store).post(view.session_id, token, batch)
    with pytest.raises(PcEventError, match="at most 3") as full:
        PcEvents(store).post(view.session_id, token, batch)
    assert full.value.status == 409
    sessions.end(view.session_id)
    with pytest.raises(PcEventError, match="has ended"):
        PcEvents(store).post(view.session_id, token, {"events": [{"kind": "focus_back", "t": T}]})
    assert count(store, PcEvent) == 2
