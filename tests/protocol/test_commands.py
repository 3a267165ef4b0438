"""Control messages: round trips of every command and pair request, every rejection reason, codes, QR, stats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_app.protocol import VERSION, ProtocolError, b64, canonical, new_event_id
from edge_app.protocol.commands import (
    COMMANDS,
    MAX_COMMAND_BYTES,
    MAX_PHOTO_BYTES,
    MAX_STATS_BYTES,
    PAIR_CODE_ALPHABET,
    decode_stats,
    encode_stats,
    normalize_code,
    open_signed,
    parse_qr,
    qr_payload,
    seal,
)

GOLDEN = Path(__file__).parent / "golden"
# Fixed test keys (not secrets: they sign nothing but these tests).
BRIDGE = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
DEVICE = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
NOW = 1_795_438_288_123
PHOTO = b64(b"\xff\xd8\xff" + bytes(range(256)) * 4)
SESSION = {"session": "5f0c2a9e", "exam": "math-101", "candidate": "cand_7.a"}

# name -> fields of a valid message (each command at its smallest and at its fullest)
VALID: list[tuple[str, dict[str, Any]]] = [
    ("pair", {"ok": True, **SESSION}),
    ("pair", {"ok": False, "reason": "expired_code: the pairing code has expired"}),
    ("session_start", dict(SESSION)),
    ("session_start", {**SESSION, "photo": PHOTO, "rules": {"preset": "strict", "phone": {"min_s": 1.5}}}),
    ("session_stop", {"session": "5f0c2a9e"}),
    ("thresholds", {"session": "5f0c2a9e", "rules": {}}),
    ("template", {"session": "5f0c2a9e", "photo": PHOTO}),
    ("session_stop", {"session": "5f0c2a9e", "c": 2**53}),  # numbered: the bridge's outbox row
    ("thresholds", {"session": "5f0c2a9e", "rules": {}, "c": 1}),
    ("receipt", {"n": 0}),
    ("receipt", {"n": 999_999_999}),
    ("evidence_purge", {"digests": ["AAAAAAAAAAAAAAAAAAAAAA"]}),
    ("evidence_purge", {"digests": ["AAAAAAAAAAAAAAAAAAAAAA", "Zz09_-Zz09_-Zz09_-Zz09"]}),
    ("pair_request", {"d": "unit-1", "code": "ABCDEFGH"}),
    ("pair_request", {"d": "unit-1", "code": "23456789", "via": "typed"}),
]


def sign_raw(fields: dict[str, Any], key: Ed25519PrivateKey = BRIDGE) -> bytes:
    """Any object signed as a sender would sign it, without the sender's checks (to build bad messages)."""
    body = {k: v for k, v in fields.items() if k != "sig"}
    return canonical({**body, "sig": b64(key.sign(canonical(body)))})


def message(name: str = "session_stop", **changes: Any) -> dict[str, Any]:
    """The fields of a valid message ``name`` with ``changes`` (a value of ... drops the key)."""
    fields = {**dict(VALID)[name], "v": VERSION, "id": new_event_id(NOW), "t": NOW, "k": name}
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not ...}


def reason(name: str, payload: bytes, key: Ed25519PrivateKey | None = BRIDGE) -> str:
    with pytest.raises(ProtocolError) as caught:
        open_signed(name, payload, key.public_key() if key is not None else None)
    return caught.value.reason


@pytest.mark.parametrize(("name", "fields"), VALID, ids=[f"{n}-{i}" for i, (n, _) in enumerate(VALID)])
def test_every_message_round_trips(name: str, fields: dict[str, Any]) -> None:
    key = DEVICE if name == "pair_request" else BRIDGE
    payload = seal(name, fields, key, NOW)
    opened = open_signed(name, payload, key.public_key())
    assert {k: opened[k] for k in fields} == fields
    assert opened["v"] == VERSION and opened["t"] == NOW and len(opened["id"]) == 22
    assert set(opened) == set(fields) | {"v", "id", "t", "sig", "k"}
    assert payload == canonical(opened)  # canonical on the wire: the receiver can re-check the signature


def test_every_command_has_a_round_trip_case() -> None:
    assert set(COMMANDS) | {"pair_request"} == {name for name, _ in VALID}


def test_each_message_gets_its_own_id_and_the_caller_cannot_choose_it() -> None:
    first = open_signed("session_stop", seal("session_stop", {"session": "s1"}, BRIDGE, NOW), None)
    second = open_signed("session_stop", seal("session_stop", {"session": "s1", "id": "x", "v": 9}, BRIDGE, NOW),
                         None)
    assert first["id"] != second["id"] and second["v"] == VERSION


def test_the_largest_photo_fits_in_a_session_start() -> None:
    photo = b64(b"\xff" * MAX_PHOTO_BYTES)
    rules = {"note": "x" * (16 * 1024 - 20)}  # the sessions' rules allowance
    payload = seal("session_start", {**SESSION, "photo": photo, "rules": rules}, BRIDGE, NOW)
    assert len(payload) <= MAX_COMMAND_BYTES
    assert open_signed("session_start", payload, BRIDGE.public_key())["photo"] == photo


def test_a_key_of_none_skips_only_the_signature() -> None:
    payload = seal("session_stop", {"session": "s1"}, DEVICE, NOW)
    assert open_signed("session_stop", payload, None)["session"] == "s1"
    assert reason("session_stop", canonical(message()), None) == "malformed"  # no sig at all


REJECTED: list[tuple[str, str, bytes]] = [
    # (name, expected reason, payload); signed by BRIDGE unless the case is about the signature
    ("pair_request", "oversized", b"{" + b" " * 600 + b"}"),
    ("session_start", "oversized", b" " * (MAX_COMMAND_BYTES + 1)),
    ("session_stop", "malformed", b"\xff\xfe not utf-8"),
    ("session_stop", "malformed", b'{"v":1,'),
    ("session_stop", "malformed", b"[1,2]"),
    ("session_stop", "malformed", b'"session_stop"'),
    ("session_stop", "malformed", b"null"),
    ("session_start", "malformed", b"[" * 200_000),  # nests deeper than the parser goes
    ("session_stop", "unknown_version", sign_raw(message(v=2))),
    ("session_stop", "unknown_version", sign_raw(message(v="1"))),
    ("session_stop", "unknown_version", sign_raw(message(v=...))),
    ("session_stop", "unknown_version", sign_raw(message(v=True))),
    ("reboot", "unknown_command", sign_raw(message())),
    ("session_start", "malformed", sign_raw(message("session_start", candidate=...))),
    ("pair", "malformed", sign_raw(message("pair", ok=...))),
    ("session_stop", "malformed", sign_raw(message(extra="x"))),
    ("session_stop", "malformed", sign_raw(message(id=...))),
    ("session_stop", "malformed", sign_raw(message(t=...))),
    ("session_stop", "malformed", canonical(message())),  # unsigned
    ("pair", "malformed", sign_raw(message("pair", ok="yes"))),
    ("pair", "malformed", sign_raw(message("pair", ok=1))),
    ("pair", "malformed", sign_raw(message("pair", reason="r" * 201))),
    ("session_stop", "malformed", sign_raw(message(session=5))),
    ("session_stop", "malformed", sign_raw(message(session=""))),
    ("session_stop", "malformed", sign_raw(message(session="a" * 65))),
    ("session_stop", "malformed", sign_raw(message(session="has space"))),
    ("session_stop", "malformed", sign_raw(message(session="s1\n"))),  # `$` alone would let it through
    ("session_stop", "malformed", sign_raw(message(session="../etc"))),
    ("thresholds", "malformed", sign_raw(message("thresholds", rules=[1]))),
    ("thresholds", "malformed", sign_raw(message("thresholds", rules="strict"))),
    ("template", "malformed", sign_raw(message("template", photo="not base64!"))),
    ("template", "malformed", sign_raw(message("template", photo=None))),
    ("session_stop", "malformed", sign_raw(message(c=0))),
    ("session_stop", "malformed", sign_raw(message(c=2**53 + 1))),
    ("session_stop", "malformed", sign_raw(message(c="7"))),
    ("session_stop", "malformed", sign_raw(message(c=True))),
    ("pair", "malformed", sign_raw(message("pair", c=3))),  # only session commands are numbered
    ("receipt", "malformed", sign_raw(message("receipt", n=-1))),
    ("receipt", "malformed", sign_raw(message("receipt", n=10**9))),
    ("receipt", "malformed", sign_raw(message("receipt", n=1.0))),
    ("receipt", "malformed", sign_raw(message("receipt", n=...))),
    ("session_stop", "malformed", sign_raw(message(id=5))),
    ("session_stop", "malformed", sign_raw(message(id="short"))),
    ("session_stop", "malformed", sign_raw(message(id="!" * 22))),
    ("session_stop", "malformed", sign_raw(message(t=-1))),
    ("session_stop", "malformed", sign_raw(message(t=float(NOW)))),
    ("session_stop", "malformed", sign_raw(message(t=True))),
    ("session_stop", "malformed", sign_raw(message(t=str(NOW)))),
    ("session_stop", "malformed", sign_raw(message(t=10**13))),
    ("session_stop", "malformed", canonical({**message(), "sig": 5})),
    ("session_stop", "malformed", canonical({**message(), "sig": b64(bytes(63))})),
    ("session_stop", "malformed", canonical({**message(), "sig": "*" * 86})),
    ("pair_request", "malformed", sign_raw(message("pair_request", d="Unit-1"), DEVICE)),
    ("pair_request", "malformed", sign_raw(message("pair_request", d="u1"), DEVICE)),
    ("pair_request", "malformed", sign_raw(message("pair_request", code="abcdefgh"), DEVICE)),
    ("pair_request", "malformed", sign_raw(message("pair_request", code="ABCDEFG0"), DEVICE)),
    ("pair_request", "malformed", sign_raw(message("pair_request", code="ABCDEFG"), DEVICE)),
    ("pair_request", "malformed", sign_raw(message("pair_request", code="ABCDEFGH\n"), DEVICE)),
    ("pair_request", "malformed", sign_raw(message("pair_request", via="email"), DEVICE)),
    ("session_stop", "bad_signature", canonical({**message(), "sig": b64(bytes(64))})),
    ("session_stop", "bad_signature", sign_raw(message(), DEVICE)),  # the wrong key
]


@pytest.mark.parametrize(("name", "expected", "payload"), REJECTED,
                         ids=[f"{i}-{n}-{r}" for i, (n, r, _) in enumerate(REJECTED)])
def test_rejections_name_their_reason(name: str, expected: str, payload: bytes) -> None:
    assert reason(name, payload, DEVICE if name == "pair_request" else BRIDGE) == expected


@pytest.mark.parametrize(("name", "fields"), [("receipt", {"n": 240}),
                                             ("session_stop", {"session": "5f0c2a9e", "c": 17})])
def test_the_golden_commands_are_stable(name: str, fields: dict[str, Any]) -> None:
    body = {**fields, "v": VERSION, "id": b64(bytes(16)), "t": NOW, "k": name, "to": "unit-0001"}
    golden = (GOLDEN / f"{name}_v1.json").read_bytes().strip()
    assert sign_raw(body) == golden  # the bridge key signs the same bytes today as when the file was written
    opened = open_signed(name, golden, BRIDGE.public_key(), to="unit-0001")
    assert {k: opened[k] for k in fields} == fields


def test_a_field_changed_after_signing_breaks_the_signature() -> None:
    fields = json.loads(seal("session_stop", {"session": "s1"}, BRIDGE, NOW))
    fields["session"] = "s2"
    assert reason("session_stop", canonical(fields)) == "bad_signature"


def test_a_pair_request_signed_by_another_device_is_refused() -> None:
    forged = seal("pair_request", {"d": "unit-1", "code": "ABCDEFGH"}, BRIDGE, NOW)
    assert reason("pair_request", forged, DEVICE) == "bad_signature"


def test_a_command_cannot_be_opened_as_another() -> None:
    stop = seal("session_stop", {"session": "s1"}, BRIDGE, NOW)
    assert reason("session_start", stop) == "malformed"  # exam and candidate missing
    template = seal("template", {"session": "s1", "photo": "AA"}, BRIDGE, NOW)
    assert reason("thresholds", template) == "malformed"  # same session field, but k names the template
    fields = json.loads(seal("thresholds", {"session": "s1", "rules": {}}, BRIDGE, NOW))
    fields["k"] = "template"  # relabelled after signing
    assert reason("thresholds", canonical(fields)) == "malformed"


def test_a_command_for_one_unit_is_refused_by_another() -> None:
    stop = seal("session_stop", {"session": "s1"}, BRIDGE, NOW, to="unit-1")
    assert open_signed("session_stop", stop, BRIDGE.public_key(), to="unit-1")["to"] == "unit-1"
    with pytest.raises(ProtocolError) as caught:
        open_signed("session_stop", stop, BRIDGE.public_key(), to="unit-2")
    assert caught.value.reason == "wrong_device"
    unaddressed = seal("session_stop", {"session": "s1"}, BRIDGE, NOW)
    with pytest.raises(ProtocolError):
        open_signed("session_stop", unaddressed, BRIDGE.public_key(), to="unit-1")


@pytest.mark.parametrize(("name", "fields", "expected"), [
    ("reboot", {}, "unknown_command"),
    ("session_stop", {}, "malformed"),
    ("session_stop", {"session": "s1", "extra": 1}, "malformed"),
    ("pair", {"ok": "yes"}, "malformed"),
    ("session_start", {**SESSION, "photo": "A" * MAX_COMMAND_BYTES}, "oversized"),
    ("pair_request", {"d": "unit-1", "code": "abcdefgh"}, "malformed"),
])
def test_seal_checks_as_the_receiver_will(name: str, fields: dict[str, Any], expected: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        seal(name, fields, BRIDGE, NOW)
    assert caught.value.reason == expected


# -- pairing codes and the QR payload ---------------------------------------------------------------------

@pytest.mark.parametrize(("typed", "code"), [
    ("ABCDEFGH", "ABCDEFGH"),
    ("abcd-efgh", "ABCDEFGH"),
    ("  2345 6789 ", "23456789"),
    ("zyxw\tvuts", "ZYXWVUTS"),
    ("a-b-c-d-e-f-g-h", "ABCDEFGH"),
    ("ABCDEFG", None),  # 7
    ("ABCDEFGHJ", None),  # 9
    ("", None),
    ("ABCDEFG0", None),  # 0, O, 1, I and L are left out: easy to confuse
    ("ABCDEFGO", None),
    ("ABCDEFG1", None),
    ("ABCDEFGI", None),
    ("ABCDEFGL", None),
    ("ABCD_EFGH", None),
    ("ＡＢＣＤＥＦＧＨ", None),  # full-width letters
])
def test_normalize_code(typed: str, code: str | None) -> None:
    if code is None:
        with pytest.raises(ProtocolError) as caught:
            normalize_code(typed)
        assert caught.value.reason == "bad_code"
    else:
        assert normalize_code(typed) == code


def test_the_alphabet_has_no_look_alikes() -> None:
    assert not set("01OIL") & set(PAIR_CODE_ALPHABET) and len(set(PAIR_CODE_ALPHABET)) == len(PAIR_CODE_ALPHABET)


def test_qr_payload_is_upper_case_alphanumeric() -> None:
    assert qr_payload("abcd efgh") == "INVIGIL:1:ABCDEFGH"
    with pytest.raises(ProtocolError):
        qr_payload("ABC")


@pytest.mark.parametrize(("text", "code"), [
    ("INVIGIL:1:ABCDEFGH", "ABCDEFGH"),
    ("INVIGIL:1:abcd-efgh", "ABCDEFGH"),
    ("INVIGIL:1:", None),
    ("INVIGIL:1:ABCDEFGH0", None),
    ("INVIGIL:2:ABCDEFGH", None),
    ("invigil:1:ABCDEFGH", None),
    ("XINVIGIL:1:ABCDEFGH", None),
    ("https://example.com/?code=ABCDEFGH", None),
    ("", None),
])
def test_parse_qr(text: str, code: str | None) -> None:
    assert parse_qr(text) == code


def test_qr_round_trip() -> None:
    assert parse_qr(qr_payload("2345-6789")) == "23456789"


# -- stats ------------------------------------------------------------------------------------------------

FULL_STATS = {"d": "unit-1", "fps": 4.5, "inf_ms": 83.25, "queue": 12, "temp": 61.5, "disk_mb": 9000,
              "session": "5f0c2a9e", "uptime": 3600, "camera": "ok"}


def test_stats_round_trip_and_none_is_left_out() -> None:
    decoded = decode_stats(encode_stats({**FULL_STATS, "temp": None}, NOW))
    assert {k: decoded[k] for k in FULL_STATS if k != "temp"} == {k: v for k, v in FULL_STATS.items() if k != "temp"}
    assert "temp" not in decoded and decoded["v"] == VERSION and decoded["t"] == NOW
    assert decode_stats(encode_stats({"d": "unit-1"}, NOW))["d"] == "unit-1"


def test_the_largest_stats_fit() -> None:
    largest = {"d": "a" * 14, "fps": 999.9999999999999, "inf_ms": 599_999.9999999999, "queue": 10**9,
               "temp": -59.99999999999999, "disk_mb": 10**9, "session": "s" * 64, "uptime": 10**10,
               "camera": "stalled"}
    assert len(encode_stats(largest, 9_999_999_999_999)) <= MAX_STATS_BYTES


def stats(**changes: Any) -> bytes:
    fields = {**FULL_STATS, "v": VERSION, "id": new_event_id(NOW), "t": NOW, **changes}
    return canonical({k: v for k, v in fields.items() if v is not ...})


@pytest.mark.parametrize(("payload", "expected"), [
    (b" " * (MAX_STATS_BYTES + 1), "oversized"),
    (b"not json", "malformed"),
    (b"[]", "malformed"),
    (stats(v=2), "unknown_version"),
    (stats(d=...), "malformed"),
    (stats(d="UNIT"), "malformed"),
    (stats(extra=1), "malformed"),
    (stats(id=...), "malformed"),
    (stats(fps=-1), "malformed"),
    (stats(fps=1001), "malformed"),
    (stats(fps="4"), "malformed"),
    (stats(fps=True), "malformed"),
    (stats(queue=1.5), "malformed"),
    (stats(temp=201), "malformed"),
    (stats(camera="broken"), "malformed"),
    (stats(session="a b"), "malformed"),
    (b'{"v":1,"d":"unit-1","id":"AAAAAAAAAAAAAAAAAAAAAA","t":1,"fps":NaN}', "malformed"),
    (b'{"v":1,"d":"unit-1","id":"AAAAAAAAAAAAAAAAAAAAAA","t":1,"fps":Infinity}', "malformed"),
])
def test_stats_rejections(payload: bytes, expected: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_stats(payload)
    assert caught.value.reason == expected


@pytest.mark.parametrize("fields", [{"fps": 1.0}, {**FULL_STATS, "queue": -1}, {**FULL_STATS, "camera": "x"},
                                    {**FULL_STATS, "bogus": 1}])
def test_encode_stats_refuses_what_the_bridge_would(fields: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        encode_stats(fields, NOW)
