"""The wire contract: round trip, size bound, golden payload, every rejection reason, chain checks."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_app.protocol import (
    MAX_EVENT_BYTES,
    MAX_KEYWORD,
    MAX_REFUSED,
    ChainVerifier,
    Event,
    ProtocolError,
    b64,
    chain_hash,
    decode_event,
    device_topic,
    encode_event,
    evidence_digest,
    new_event_id,
    proctor_topic,
    signed_bytes,
    signed_part,
)
from tests.protocol.alterations import ALTERATIONS

GOLDEN = Path(__file__).parent / "golden"
# A fixed test key (not a secret: it signs nothing but these tests) so the golden payload is stable.
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
START = Event(event_id=b64(bytes(16)), device_id="unit-0001", seq=1, time_ms=1_795_438_288_123, kind="phone",
              phase="start", severity="critical", confidence=0.874, prev_hash="", box=(0.1, 0.2, 0.35, 0.5),
              evidence=evidence_digest("ab" * 32))
REFUSED = Event(event_id=b64(bytes(range(16))), device_id="unit-0001", seq=7, time_ms=1_795_438_400_000,
                kind="events_refused", phase="start", severity="warning", confidence=1.0, prev_hash=b64(bytes(16)),
                refused=(268, 1_795_438_300, 1_795_438_390), refused_reason="disk_full")


def test_round_trip_keeps_every_field() -> None:
    decoded = decode_event(encode_event(START, KEY), KEY.public_key())
    assert decoded == Event(**{**START.__dict__, "confidence": 0.87, "box": (100 / 999, 200 / 999, 350 / 999,
                                                                              500 / 999)})


def test_the_golden_payload_is_stable() -> None:
    payload = encode_event(START, KEY)
    golden = GOLDEN / "phone_start_v1.json"
    assert payload == golden.read_bytes().strip()
    assert decode_event(golden.read_bytes().strip(), KEY.public_key()).kind == "phone"


def test_the_golden_refusal_report_is_stable_and_round_trips() -> None:
    payload = encode_event(REFUSED, KEY)
    assert payload == (GOLDEN / "events_refused_v1.json").read_bytes().strip()
    assert decode_event(payload, KEY.public_key()) == REFUSED


def test_the_largest_possible_events_fit_in_300_bytes() -> None:
    common = dict(device_id="a" * 14, seq=999_999_999, time_ms=9_999_999_999_999, kind="identity_mismatch",
                  severity="critical", confidence=1.0, prev_hash=b64(bytes(16)), box=(1.0, 1.0, 1.0, 1.0))
    start = Event(event_id=new_event_id(), phase="start", evidence=evidence_digest("ff" * 32), **common)  # type: ignore[arg-type]
    end = Event(event_id=new_event_id(), phase="end", alert_id=new_event_id(), **common)  # type: ignore[arg-type]
    keyword = Event(event_id=new_event_id(), phase="start", evidence=evidence_digest("ff" * 32),
                    keyword="q" * MAX_KEYWORD, **{**common, "kind": "speech_keyword", "box": None})  # type: ignore[arg-type]
    refused = Event(event_id=new_event_id(), phase="start", refused=(MAX_REFUSED, 9_999_999_999, 9_999_999_999),
                    refused_reason="store_error", **{**common, "kind": "events_refused",
                                                                          "box": None})  # type: ignore[arg-type]
    for event in (start, end, keyword, refused):
        assert len(encode_event(event, KEY)) <= MAX_EVENT_BYTES


def test_a_keyword_event_round_trips_with_its_keyword() -> None:
    event = Event(**{**START.__dict__, "kind": "speech_keyword", "box": None, "keyword": "question four"})
    payload = encode_event(event, KEY)
    assert b'"k":"kw"' in payload and b'"w":"question four"' in payload
    assert decode_event(payload, KEY.public_key()).keyword == "question four"


def test_event_ids_are_time_ordered_uuid7() -> None:
    first, second = new_event_id(1_000), new_event_id(2_000)
    assert len(first) == 22 and first < second
    raw = __import__("base64").urlsafe_b64decode(first + "==")
    assert raw[6] >> 4 == 7 and raw[8] >> 6 == 2


def tampered(change: dict) -> bytes:
    fields = json.loads(encode_event(START, KEY))
    fields.update(change)
    fields = {k: v for k, v in fields.items() if v is not None}  # None: key removed
    return json.dumps(fields, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    ("payload", "reason", "detail"),
    [
        (b"x" * 301, "oversized", "301 bytes"),
        (b"{not json", "malformed", "not JSON"),
        (b"[1,2]", "malformed", "not a JSON object"),
        (tampered({"v": 2}), "unknown_version", "schema version 2"),
        (tampered({"k": "zz"}), "malformed", "unknown kind code"),
        (tampered({"n": 0}), "malformed", "n must be an integer"),
        (tampered({"c": 101}), "malformed", "c must be an integer 0..100"),
        (tampered({"s": True}), "malformed", "s must be an integer"),
        (tampered({"b": [1, 2, 3]}), "malformed", "b must be four integers"),
        (tampered({"e": b64(bytes(8))}), "malformed", "e must hold 16 bytes"),
        (tampered({"e": "q6urq6urq6urq6urq6urq*"}), "malformed", "e is not base64url"),
        (tampered({"e": "q6urq6urq6urq6urq6urq+"}), "malformed", "e is not base64url"),  # base64, not base64url
        (tampered({"d": "UNIT 1"}), "malformed", "device id"),
        (tampered({"x": 1}), "malformed", "unknown keys ['x']"),
        (tampered({"a": b64(bytes(16))}), "malformed", "a start event has no 'a'"),
        (tampered({"w": "seven"}), "malformed", "on a speech_keyword start event"),  # a phone event
        (tampered({"k": "kw", "w": "Seven!"}), "malformed", "w must be a keyword"),
        (tampered({"k": "kw", "w": "x" * 19}), "malformed", "w must be a keyword"),
        (tampered({"k": "kw", "w": 7}), "malformed", "w must be a keyword"),
        (tampered({"c": 12}), "bad_signature", "not signed by unit-0001"),
        (tampered({"g": [1, 2, 3], "r": "disk_full"}), "malformed", "g and r belong to an events_refused"),
        (tampered({"k": "rf", "b": None}), "malformed", "g and r belong to an events_refused"),
        (tampered({"k": "rf", "g": [1, 5, 4], "r": "disk_full", "b": None, "e": None}), "malformed",
         "g must be [count 1..9999999, first s, last s >= first]"),
        (tampered({"k": "rf", "g": [0, 1, 2], "r": "disk_full", "b": None, "e": None}), "malformed", "g must be"),
        (tampered({"k": "rf", "g": [1, 1, 2], "r": "bored", "b": None, "e": None}), "malformed", "r must be one of"),
    ],
)
def test_rejections_name_their_reason(payload: bytes, reason: str, detail: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_event(payload, KEY.public_key())
    assert info.value.reason == reason and detail in info.value.detail


def test_another_devices_key_does_not_verify() -> None:
    with pytest.raises(ProtocolError, match="bad_signature"):
        decode_event(encode_event(START, OTHER), KEY.public_key())


def test_an_event_that_breaks_the_contract_cannot_be_encoded() -> None:
    with pytest.raises(ProtocolError, match="a start event has no 'a'"):
        encode_event(Event(**{**START.__dict__, "alert_id": b64(bytes(16))}), KEY)


def chain(count: int) -> list[tuple[Event, bytes]]:
    out, previous = [], ""
    for seq in range(1, count + 1):
        event = Event(**{**START.__dict__, "event_id": new_event_id(), "seq": seq, "prev_hash": previous})
        payload = encode_event(event, KEY)
        out.append((event, payload))
        previous = chain_hash(payload)
    return out


def test_chain_in_order_gap_replay_and_broken_history() -> None:
    events = chain(5)
    verifier = ChainVerifier()
    assert [verifier.check(e, p) for e, p in events[:2]] == [None, None]
    assert verifier.check(*events[3]) == "gap"  # event 3 lost
    assert verifier.check(*events[4]) is None
    assert verifier.check(*events[1]) == "replayed"
    forged = Event(**{**events[4][0].__dict__, "seq": 6, "prev_hash": b64(bytes(16))})
    assert ChainVerifier(5, chain_hash(events[4][1])).check(forged, encode_event(forged, KEY)) == "broken_chain"


def test_topics() -> None:
    assert device_topic("unit-0001", "event") == "invigil/v1/dev/unit-0001/event"
    assert proctor_topic("exam-7") == "invigil/v1/proctor/exam-7/alerts"
    with pytest.raises(ProtocolError, match="bad_device"):
        device_topic("unit/+/#", "event")


@pytest.mark.parametrize("name", sorted(ALTERATIONS))
def test_an_altered_encoding_of_a_signed_event_is_refused(name: str) -> None:
    alter, reason = ALTERATIONS[name]
    payload = encode_event(START, KEY)
    altered = alter(payload)
    assert altered != payload
    with pytest.raises(ProtocolError) as info:
        decode_event(altered, KEY.public_key())
    assert info.value.reason == reason


def test_the_signature_covers_the_exact_payload_bytes_without_the_sig_member() -> None:
    payload = encode_event(START, KEY)
    sig = json.loads(payload)["sig"]
    signed = payload.replace(f',"sig":"{sig}"'.encode(), b"")
    KEY.public_key().verify(__import__("base64").urlsafe_b64decode(sig + "=="), signed)  # raises if not


@pytest.mark.parametrize("event", [START, REFUSED, replace(START, kind="speech_keyword", box=None,
                                                            keyword="question four")])
def test_the_signed_part_cut_from_a_canonical_payload_is_what_was_signed(event: Event) -> None:
    payload = encode_event(event, KEY)
    fields = json.loads(payload)
    assert signed_part(payload, fields) == signed_bytes(fields)  # the bridge cuts it instead of encoding again
