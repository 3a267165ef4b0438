"""Exam sessions on SQLite and PostgreSQL: creation, pairing by one-time code (and every refusal), ending."""

from __future__ import annotations

import pytest

from cloud_bridge import sessions as sessions_module
from cloud_bridge.sessions import MAX_RULES_BYTES, SessionError, Sessions
from edge_app.protocol import ProtocolError
from edge_app.protocol.commands import MAX_PHOTO_BYTES, PAIR_CODE_ALPHABET, parse_qr
from tests.bridge.parts import PHOTO, T0, Clock


def refusal(call: object, *args: object) -> str:
    with pytest.raises(SessionError) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value.reason


def test_a_new_session_waits_with_a_code(sessions: Sessions) -> None:
    view = sessions.create("math-101", "cand-7", PHOTO, '{"preset":"strict"}')
    assert (view.state, view.device_id, view.created_at, view.code_expires_at) == ("waiting", None, T0, T0 + 900)
    assert view.pairing_code is not None and len(view.pairing_code) == 8
    assert set(view.pairing_code) <= set(PAIR_CODE_ALPHABET)
    assert view.qr_payload is not None and parse_qr(view.qr_payload) == view.pairing_code
    assert sessions.get(view.session_id) == view
    assert sessions.photo(view.session_id) == PHOTO and sessions.rules(view.session_id) == '{"preset":"strict"}'
    assert sessions.get("nope") is None and sessions.photo("nope") == b"" and sessions.rules("nope") is None


def test_codes_differ_between_sessions(sessions: Sessions) -> None:
    codes = {sessions.create("math-101", f"cand-{i}", PHOTO).pairing_code for i in range(20)}
    assert len(codes) == 20


@pytest.mark.parametrize(("exam", "candidate", "photo", "rules", "reason"), [
    ("", "cand", PHOTO, None, "invalid"),
    ("math 101", "cand", PHOTO, None, "invalid"),
    ("math-101", "cand\n", PHOTO, None, "invalid"),  # `$` alone would let a trailing newline in
    ("m" * 65, "cand", PHOTO, None, "invalid"),
    ("math-101", "c/d", PHOTO, None, "invalid"),
    ("math-101", "cand", b"\x89PNG\r\n\x1a\n", None, "invalid"),
    ("math-101", "cand", b"", None, "invalid"),
    ("math-101", "cand", b"\xff\xd8\xff" + bytes(MAX_PHOTO_BYTES), None, "too_large"),
    ("math-101", "cand", PHOTO, '{"x":"' + "y" * MAX_RULES_BYTES + '"}', "too_large"),
    ("math-101", "cand", PHOTO, "{not json", "invalid"),
    ("math-101", "cand", PHOTO, '["phone"]', "invalid"),  # rules are the unit's rules section: an object
    ("math-101", "cand", PHOTO, '{"phone": {"min_score": 7}}', "invalid"),  # the unit would refuse it
    ("math-101", "cand", PHOTO, '{"no_such_kind": {}}', "invalid"),
])
def test_create_refuses(sessions: Sessions, exam: str, candidate: str, photo: bytes, rules: str | None,
                        reason: str) -> None:
    assert refusal(sessions.create, exam, candidate, photo, rules) == reason
    assert sessions.for_exam(exam) == []


def test_the_largest_photo_is_taken(sessions: Sessions) -> None:
    photo = b"\xff\xd8\xff" + bytes(MAX_PHOTO_BYTES - 3)
    assert sessions.photo(sessions.create("math-101", "cand", photo).session_id) == photo


def test_a_code_collision_draws_again_and_gives_up_after_a_few(sessions: Sessions,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sessions_module, "new_code", lambda: "ABCDEFGH")
    first = sessions.create("math-101", "cand-1", PHOTO)
    assert first.pairing_code == "ABCDEFGH"
    assert refusal(sessions.create, "math-101", "cand-2", PHOTO) == "busy"
    sessions.pair("unit-1", "ABCDEFGH")
    assert refusal(sessions.create, "math-101", "cand-2", PHOTO) == "busy"  # kept while paired (resends)
    sessions.end(first.session_id)  # the code is free again once the session ends
    assert sessions.create("math-101", "cand-2", PHOTO).pairing_code == "ABCDEFGH"


def test_the_same_pair_request_again_gets_the_same_answer(sessions: Sessions) -> None:
    view = sessions.create("math-101", "cand-1", PHOTO)
    assert view.pairing_code is not None
    first = sessions.pair("unit-1", view.pairing_code)
    assert sessions.pair("unit-1", view.pairing_code) == first  # a QoS 1 resend, or the unit asking again
    assert refusal(sessions.pair, "unit-2", view.pairing_code) == "unknown_code"  # used: not for another unit


def test_pairing_binds_the_session_to_the_device(sessions: Sessions, clock: Clock) -> None:
    view = sessions.create("math-101", "cand-7", PHOTO)
    clock.advance(60)
    assert view.pairing_code is not None
    typed = f" {view.pairing_code[:4].lower()}-{view.pairing_code[4:].lower()} "  # as staff type it
    paired = sessions.pair("unit-1", typed)
    assert (paired.state, paired.device_id, paired.paired_at, paired.pairing_code) == ("paired", "unit-1", T0 + 60,
                                                                                       None)
    assert paired.qr_payload is None
    assert sessions.active_for_device("unit-1") == paired == sessions.get(view.session_id)
    assert sessions.active_for_device("unit-2") is None


def test_an_unknown_code_is_refused(sessions: Sessions) -> None:
    sessions.create("math-101", "cand-7", PHOTO)
    assert refusal(sessions.pair, "unit-1", "ZZZZZZZZ") == "unknown_code"
    with pytest.raises(ProtocolError):
        sessions.pair("unit-1", "not a code")


def test_an_expired_code_is_refused(sessions: Sessions, clock: Clock) -> None:
    view = sessions.create("math-101", "cand-7", PHOTO)
    clock.advance(900)
    assert sessions.pair("unit-2", view.pairing_code or "").device_id == "unit-2"  # valid through its last second
    late = sessions.create("math-101", "cand-8", PHOTO)
    clock.advance(900.5)
    assert refusal(sessions.pair, "unit-1", late.pairing_code) == "expired_code"
    assert sessions.get(late.session_id).state == "waiting"  # type: ignore[union-attr]


def test_a_used_code_is_refused(sessions: Sessions) -> None:
    view = sessions.create("math-101", "cand-7", PHOTO)
    sessions.pair("unit-1", view.pairing_code or "")
    assert refusal(sessions.pair, "unit-2", view.pairing_code) == "unknown_code"
    assert sessions.get(view.session_id).device_id == "unit-1"  # type: ignore[union-attr]


def test_an_unregistered_device_cannot_pair(sessions: Sessions) -> None:
    view = sessions.create("math-101", "cand-7", PHOTO)
    assert refusal(sessions.pair, "unit-9", view.pairing_code) == "unknown_device"
    assert sessions.get(view.session_id).state == "waiting"  # type: ignore[union-attr]


def test_a_busy_device_is_refused_until_its_session_ends(sessions: Sessions) -> None:
    first = sessions.create("math-101", "cand-7", PHOTO)
    second = sessions.create("math-101", "cand-8", PHOTO)
    sessions.pair("unit-1", first.pairing_code or "")
    assert refusal(sessions.pair, "unit-1", second.pairing_code) == "device_busy"
    assert sessions.get(second.session_id).state == "waiting"  # type: ignore[union-attr]  # its code still works
    sessions.end(first.session_id)
    assert sessions.pair("unit-1", second.pairing_code or "").session_id == second.session_id
    assert sessions.active_for_device("unit-1").session_id == second.session_id  # type: ignore[union-attr]


def test_an_ended_session_cannot_be_paired_and_ending_is_idempotent(sessions: Sessions, clock: Clock) -> None:
    view = sessions.create("math-101", "cand-7", PHOTO)
    clock.advance(5)
    ended = sessions.end(view.session_id)
    assert (ended.state, ended.ended_at, ended.pairing_code) == ("ended", T0 + 5, None)
    assert refusal(sessions.pair, "unit-1", view.pairing_code) == "unknown_code"
    clock.advance(5)
    assert sessions.end(view.session_id).ended_at == T0 + 5
    assert refusal(sessions.end, "no-such-session") == "not_found"


def test_ending_a_paired_session_frees_the_device(sessions: Sessions) -> None:
    view = sessions.create("math-101", "cand-7", PHOTO)
    sessions.pair("unit-1", view.pairing_code or "")
    ended = sessions.end(view.session_id)
    assert (ended.state, ended.device_id) == ("ended", "unit-1")
    assert sessions.active_for_device("unit-1") is None


def test_sessions_of_an_exam_oldest_first(sessions: Sessions, clock: Clock) -> None:
    ids = []
    for i in range(3):
        ids.append(sessions.create("math-101", f"cand-{i}", PHOTO).session_id)
        clock.advance(1)
    sessions.create("physics-2", "cand-0", PHOTO)
    assert [v.session_id for v in sessions.for_exam("math-101")] == ids
    assert sessions.for_exam("none") == []


def test_rules_are_checked_over_the_bridges_own_as_the_unit_gets_them(sessions: Sessions) -> None:
    """Every caller of create (the API, the demo, a script) gets the unit's own check, with the bridge's rules
    under the session's as they are sent."""
    assert sessions.create("math-101", "cand", PHOTO, '{"phone": {"min_score": 0.3}}').state == "waiting"
    sessions.base_rules = {"preset": "no-such-preset"}
    with pytest.raises(SessionError, match="rules the unit would refuse: preset"):
        sessions.create("math-101", "cand-2", PHOTO, '{"phone": {"min_score": 0.3}}')
