"""The wire contract between camera units and the cloud bridge, version 1 (docs/protocol.md).

Free of edge-only imports: from ``edge_app`` the bridge imports this package and the stdlib-only
crash-safe writer ``edge_app.atomic``, nothing else.

An alert event is one compact JSON object of at most 300 bytes with short keys::

    {"v":1,"id":"<event id>","d":"<device>","n":<seq>,"t":<ms>,"k":"ph","p":"s","s":2,"c":87,
     "b":[x1,y1,x2,y2],"e":"<evidence digest>","h":"<previous event hash>","a":"<start event id>",
     "sig":"<Ed25519 signature>"}

A ``speech_keyword`` start event names the keyword heard in ``w`` (at most 18 characters, never a
transcript) and carries no box. An ``events_refused`` start event (``rf``) reports alerts the unit could not
store, so never numbered: ``g`` is ``[count, first s, last s]`` (s since 1970) and ``r`` the reason
(``disk_full``).

A payload is accepted only in its one canonical form (sorted keys, no spaces, ASCII with ``\\u`` escapes
only for non-ASCII, nothing after the object; binary values in canonical unpadded base64url): its bytes are
what the bridge stores and chains, so they must be exactly what was signed. ``sig`` signs those bytes with
the ``,"sig":"..."`` member cut out, which is the canonical JSON of every other key. ``h`` is the first 16
bytes of the SHA-256 of the previous event's payload (empty for the first event of a device), so a missing,
altered or re-ordered event breaks the chain; ``n`` counts each device's events from 1.
:func:`decode_event` rejects anything else with a reason.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_app.protocol.encoding import (
    VERSION,
    ProtocolError,
    b64,
    canonical,
    check_b64,
    check_canonical,
    load_message,
    signed_bytes,
    signed_part,
    unb64,
)

MAX_EVENT_BYTES = 300
PREFIX = f"invigil/v{VERSION}"
DEVICE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{2,13}$")  # 3-14 characters: keeps every event within 300 bytes
KIND_CODES = {
    "absent": "ab", "left_zone": "lz", "extra_person": "xp", "phone": "ph", "material": "mt",
    "gaze_away": "gz", "talking": "tk", "loud_audio": "la", "identity_mismatch": "im",
    "camera_tamper": "ct", "speech_keyword": "kw", "device_offline": "do", "events_refused": "rf",
}
KINDS = {code: kind for kind, code in KIND_CODES.items()}
PHASES = {"s": "start", "u": "update", "e": "end"}
PHASE_CODES = {name: code for code, name in PHASES.items()}
SEVERITIES = ("info", "warning", "critical")
BOX_SCALE = 999  # box corners as shares of the frame, 0..999
REQUIRED = {"v", "id", "d", "n", "t", "k", "p", "s", "c", "h", "sig"}
OPTIONAL = {"b", "e", "a", "w", "g", "r"}
KEYS = REQUIRED | OPTIONAL
REFUSAL_REASONS = ("disk_full", "store_error")  # why a unit's outbox refused alerts (an events_refused's "r")
MAX_REFUSED = 9_999_999  # alerts one events_refused reports at most (keeps it within 300 bytes)
MAX_KEYWORD = 18  # characters of a speech_keyword's "w": keeps the largest event within 300 bytes
KEYWORD = re.compile(r"^[a-z][a-z' ]{0,17}$")


class SignatureCheck(Protocol):
    """What checks an event's signature: a device's Ed25519 public key (``cryptography``'s, or another
    implementation's) whose ``verify`` raises ``InvalidSignature`` for a signature that does not hold."""

    def verify(self, signature: bytes, data: bytes) -> None: ...


def device_topic(device_id: str, leaf: str) -> str:
    """``invigil/v1/dev/<device>/<leaf>`` (leaf: event, status, stats or cmd/<name>)."""
    if not DEVICE_ID.fullmatch(device_id):
        raise ProtocolError("bad_device", f"device id {device_id!r} must be 3-14 of a-z, 0-9 and '-'")
    return f"{PREFIX}/dev/{device_id}/{leaf}"


def proctor_topic(exam_id: str) -> str:
    return f"{PREFIX}/proctor/{exam_id}/alerts"


def new_event_id(now_ms: int | None = None) -> str:
    """A UUIDv7 (time-ordered, 48-bit ms timestamp + 74 random bits) as 22 base64url characters."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    raw = bytearray(ms.to_bytes(6, "big") + os.urandom(10))
    raw[6] = (raw[6] & 0x0F) | 0x70  # version 7
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return b64(bytes(raw))


def chain_hash(payload: bytes) -> str:
    """What the next event carries in ``h``: the first 16 bytes of SHA-256 of this event's payload."""
    return b64(hashlib.sha256(payload).digest()[:16])


def evidence_digest(sha256_hex: str) -> str:
    """The event's ``e``: the first 16 bytes of the snapshot's SHA-256 (hex, as the device computes it).

    128 bits keep a forged snapshot matching the digest out of reach (a second preimage) and the event
    within 300 bytes; the bridge compares an upload's SHA-256 prefix with it.
    """
    return b64(bytes.fromhex(sha256_hex)[:16])


@dataclass(frozen=True)
class Event:
    """An alert transition on the wire, with readable names."""

    event_id: str
    device_id: str
    seq: int
    time_ms: int
    kind: str
    phase: str  # start, update or end
    severity: str  # info, warning or critical
    confidence: float  # 0..1, sent as a whole percent
    prev_hash: str  # "" for a device's first event
    box: tuple[float, float, float, float] | None = None  # shares of the frame, 0..1
    evidence: str | None = None  # evidence_digest(...) of the snapshot, on start events
    alert_id: str | None = None  # the start event's id, on update and end events
    keyword: str | None = None  # speech_keyword start events: the keyword heard
    refused: tuple[int, int, int] | None = None  # events_refused: (alerts refused, first s, last s)
    refused_reason: str | None = None  # events_refused: one of REFUSAL_REASONS

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "v": VERSION, "id": self.event_id, "d": self.device_id, "n": self.seq, "t": self.time_ms,
            "k": KIND_CODES[self.kind], "p": PHASE_CODES[self.phase], "s": SEVERITIES.index(self.severity),
            "c": round(min(1.0, max(0.0, self.confidence)) * 100), "h": self.prev_hash,
        }
        if self.box is not None:
            out["b"] = [round(min(1.0, max(0.0, v)) * BOX_SCALE) for v in self.box]
        if self.evidence is not None:
            out["e"] = self.evidence
        if self.alert_id is not None:
            out["a"] = self.alert_id
        if self.keyword is not None:
            out["w"] = self.keyword
        if self.refused is not None:
            out["g"] = list(self.refused)
        if self.refused_reason is not None:
            out["r"] = self.refused_reason
        return out


def encode_event(event: Event, key: Ed25519PrivateKey) -> bytes:
    """Sign and serialise; ProtocolError when the event breaks the contract (checked as the bridge will)."""
    fields = event.fields()
    fields["sig"] = b64(key.sign(signed_bytes(fields)))
    payload = canonical(fields)
    _check(fields, payload)
    return payload


def decode_event(payload: bytes, public_key: SignatureCheck | None) -> Event:
    """Parse and check one payload; ``public_key`` None checks everything but the signature."""
    fields = load_message(payload, MAX_EVENT_BYTES, "event")
    _check(fields, payload)
    check_canonical(payload, fields, "event")
    if public_key is not None:
        try:
            public_key.verify(unb64(fields["sig"], 64, "sig"), signed_part(payload, fields))
        except InvalidSignature:
            raise ProtocolError("bad_signature", f"event {fields['id']} is not signed by {fields['d']}") from None
    box = fields.get("b")
    return Event(
        event_id=fields["id"], device_id=fields["d"], seq=fields["n"], time_ms=fields["t"],
        kind=KINDS[fields["k"]], phase=PHASES[fields["p"]], severity=SEVERITIES[fields["s"]],
        confidence=fields["c"] / 100, prev_hash=fields["h"],
        box=None if box is None else (box[0] / BOX_SCALE, box[1] / BOX_SCALE, box[2] / BOX_SCALE, box[3] / BOX_SCALE),
        evidence=fields.get("e"), alert_id=fields.get("a"), keyword=fields.get("w"),
        refused=tuple(fields["g"]) if "g" in fields else None, refused_reason=fields.get("r"),
    )


def _int(fields: dict[str, Any], key: str, low: int, high: int) -> None:
    value = fields[key]
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ProtocolError("malformed", f"{key} must be an integer {low}..{high}, not {value!r}")


def _check(fields: dict[str, Any], payload: bytes) -> None:
    if len(payload) > MAX_EVENT_BYTES:
        raise ProtocolError("oversized", f"{len(payload)} bytes, at most {MAX_EVENT_BYTES}")
    keys = fields.keys()
    if not REQUIRED <= keys <= KEYS:
        missing, unknown = REQUIRED - keys, keys - REQUIRED - OPTIONAL
        raise ProtocolError("malformed", f"missing keys {sorted(missing)}, unknown keys {sorted(unknown)}")
    get = fields.get  # each check below tries the usual case at once, and only when that fails says what failed
    if not (type(fields["id"]) is str and type(fields["d"]) is str and type(fields["k"]) is str
            and type(fields["p"]) is str and type(fields["h"]) is str and type(fields["sig"]) is str
            and type(get("e", "")) is str and type(get("a", "")) is str):
        for key in ("id", "d", "k", "p", "h", "sig", "e", "a"):
            if key in fields and not isinstance(fields[key], str):
                raise ProtocolError("malformed", f"{key} must be a string")
    check_b64(fields["id"], 16, "id")
    if not DEVICE_ID.fullmatch(fields["d"]):
        raise ProtocolError("malformed", f"device id {fields['d']!r} must be 3-14 of a-z, 0-9 and '-'")
    n, t, s, c = fields["n"], fields["t"], fields["s"], fields["c"]
    if not (type(n) is int and 1 <= n <= 999_999_999 and type(t) is int and 0 <= t <= 9_999_999_999_999
            and type(s) is int and 0 <= s < len(SEVERITIES) and type(c) is int and 0 <= c <= 100):
        _int(fields, "n", 1, 999_999_999)
        _int(fields, "t", 0, 9_999_999_999_999)  # ms since 1970, through the year 2286
        _int(fields, "s", 0, len(SEVERITIES) - 1)
        _int(fields, "c", 0, 100)
    kind, phase = fields["k"], fields["p"]
    if kind not in KINDS:
        raise ProtocolError("malformed", f"unknown kind code {kind!r}")
    if phase not in PHASES:
        raise ProtocolError("malformed", f"phase must be one of {sorted(PHASES)}, not {phase!r}")
    if fields["h"] != "" or n != 1:
        check_b64(fields["h"], 16, "h")
    check_b64(fields["sig"], 64, "sig")
    if "e" in fields:
        check_b64(fields["e"], 16, "e")
    if "a" in fields:
        check_b64(fields["a"], 16, "a")
    if (phase == "s") == ("a" in fields):
        raise ProtocolError("malformed", "a start event has no 'a'; update and end events name their start in 'a'")
    if "w" in fields and (kind != KIND_CODES["speech_keyword"] or phase != "s" or "b" in fields
                          or not isinstance(fields["w"], str) or not KEYWORD.fullmatch(fields["w"])):
        raise ProtocolError("malformed", f"w must be a keyword of a-z, ' and spaces (at most {MAX_KEYWORD}), "
                            "on a speech_keyword start event without a box")
    _check_refused(fields)
    box = get("b")
    if box is not None and not (type(box) is list and len(box) == 4 and _box(*box)):  # JSON: no int subclasses
        raise ProtocolError("malformed", f"b must be four integers 0..{BOX_SCALE}, not {box!r}")


def _box(x1: Any, y1: Any, x2: Any, y2: Any) -> bool:
    """True for four ints 0..BOX_SCALE (``type is int``: a JSON bool is not one)."""
    return (type(x1) is int and type(y1) is int and type(x2) is int and type(y2) is int
            and 0 <= x1 <= BOX_SCALE and 0 <= y1 <= BOX_SCALE and 0 <= x2 <= BOX_SCALE and 0 <= y2 <= BOX_SCALE)


def _check_refused(fields: dict[str, Any]) -> None:
    refused = fields["k"] == KIND_CODES["events_refused"]
    if refused != ("g" in fields) or refused != ("r" in fields) or (refused and (
            fields["p"] != "s" or fields.keys() & {"b", "e", "w"})):
        raise ProtocolError("malformed", "g and r belong to an events_refused start event (without b, e or w), "
                            "and it has both")
    if not refused:
        return
    if fields["r"] not in REFUSAL_REASONS:
        raise ProtocolError("malformed", f"r must be one of {', '.join(REFUSAL_REASONS)}, not {fields['r']!r}")
    span = fields["g"]
    if not (isinstance(span, list) and len(span) == 3 and all(type(v) is int for v in span)
            and 1 <= span[0] <= MAX_REFUSED and 0 <= span[1] <= span[2] <= 9_999_999_999):
        raise ProtocolError("malformed", f"g must be [count 1..{MAX_REFUSED}, first s, last s >= first], "
                            f"not {span!r}")


class ChainVerifier:
    """One device's sequence and hash chain, as the bridge sees them arrive."""

    def __init__(self, last_seq: int = 0, last_hash: str = "") -> None:
        self.last_seq, self.last_hash = last_seq, last_hash

    def check(self, event: Event, payload: bytes) -> str | None:
        """None when ``event`` follows on; otherwise why not: ``gap`` (events lost in between; the chain moves
        on, so a loss is reported once), ``replayed`` (an old sequence number) or ``broken_chain`` (the
        previous-event hash does not match: altered history; the chain does not move on)."""
        if event.seq == self.last_seq + 1 and event.prev_hash != self.last_hash and self.last_seq > 0:
            return "broken_chain"
        problem = None
        if event.seq <= self.last_seq:
            return "replayed"
        if event.seq > self.last_seq + 1:
            problem = "gap"
        self.last_seq, self.last_hash = event.seq, chain_hash(payload)
        return problem
