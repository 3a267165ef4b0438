"""Version 1 control messages beside the events: pairing, commands, stats (docs/protocol.md).

- Device -> bridge ``invigil/v1/dev/<device>/pair``: a pairing code the unit saw in a QR code on the PC
  screen (or that staff typed), signed by the device key like an event.
- Bridge -> device ``invigil/v1/dev/<device>/cmd/<name>`` (:data:`COMMANDS`), signed by the bridge key.
  ``session_start`` is published retained, so a unit that reconnects (or restarts) learns its session.
  ``receipt`` says the highest ``n`` up to which the bridge has stored every one of the unit's events: the
  unit deletes an event from its outbox only then (a broker's PUBACK is not enough). ``evidence_purge``
  names snapshots (by the digest their events carried) the bridge has deleted under its retention rules: the
  unit deletes its own copies, snapshot and clip, and ignores digests it does not hold.
- Device -> bridge ``invigil/v1/dev/<device>/stats``: the unsigned heartbeat (fps, inference ms, outbox
  depth, temperature, free disk).

Every message is one JSON object with ``v`` (schema version), ``id`` (UUIDv7, so a receiver applies a
command once), ``t`` (ms since 1970) and fields checked by type and range; :func:`open_signed` and
:func:`decode_stats` reject anything else with a :class:`ProtocolError` whose reason names the problem.
"""

from __future__ import annotations

import re
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge_app.protocol import (
    DEVICE_ID,
    VERSION,
    ProtocolError,
    b64,
    canonical,
    check_canonical,
    load_message,
    new_event_id,
    signed_bytes,
    unb64,
)
from edge_app.protocol.placement import MAX_PLACEMENT, PLACEMENT

PAIR_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L: easy to read out and type
PAIR_CODE_LENGTH = 8
QR_PREFIX = f"INVIGIL:{VERSION}:"  # QR alphanumeric mode: upper case, digits and ':' keep the code small
MAX_COMMAND_BYTES = 256 * 1024  # session_start and template carry the enrolled photo (JPEG)
MAX_PHOTO_BYTES = 180_000  # the largest enrolled photo: base64 (4/3) leaves ~20 KiB of the command for the rest
MAX_STATS_BYTES = 512
NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")  # exam, candidate and session ids
EVIDENCE_DIGEST = re.compile(r"[A-Za-z0-9_-]{22}")  # an event's ``e``: 16 bytes of a snapshot's SHA-256, base64url
MAX_PURGE_DIGESTS = 500  # snapshots one evidence_purge names at most (the bridge sends more commands for more)


def _text(pattern: re.Pattern[str] | None = None, max_len: int = 200) -> Any:
    def check(value: Any) -> bool:
        # fullmatch: a pattern's ``$`` also matches before a trailing newline
        return isinstance(value, str) and len(value) <= max_len and (pattern is None or bool(pattern.fullmatch(value)))
    return check


def _number(low: float, high: float, integer: bool = False) -> Any:
    def check(value: Any) -> bool:
        kinds = (int,) if integer else (int, float)
        return isinstance(value, kinds) and not isinstance(value, bool) and low <= value <= high
    return check


def _object(value: Any) -> bool:
    return isinstance(value, dict)


def _boolean(value: Any) -> bool:
    return isinstance(value, bool)


def _b64(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= MAX_COMMAND_BYTES and bool(re.fullmatch(r"[A-Za-z0-9_-]*", value))


def _digests(value: Any) -> bool:
    return isinstance(value, list) and 1 <= len(value) <= MAX_PURGE_DIGESTS and all(
        isinstance(d, str) and EVIDENCE_DIGEST.fullmatch(d) for d in value)


_SESSION = {"session": _text(NAME), "exam": _text(NAME), "candidate": _text(NAME)}
# c: the bridge's command number, increasing with every session command it sends; a unit ignores a command
# numbered below one it has applied for the same session (a late or replayed copy).
_NUMBERED = {"c": _number(1, 2**53, integer=True)}
# name -> (required fields, optional fields); every message also has v, id, t and sig.
COMMANDS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "pair": ({"ok": _boolean}, {**_SESSION, "reason": _text(max_len=200)}),
    "session_start": (dict(_SESSION), {"photo": _b64, "rules": _object, **_NUMBERED}),
    "session_stop": ({"session": _text(NAME)}, dict(_NUMBERED)),
    "thresholds": ({"session": _text(NAME), "rules": _object}, dict(_NUMBERED)),
    "template": ({"session": _text(NAME), "photo": _b64}, dict(_NUMBERED)),
    "receipt": ({"n": _number(0, 999_999_999, integer=True)}, {}),
    "evidence_purge": ({"digests": _digests}, {}),
}
PAIR_REQUEST = ({"d": _text(DEVICE_ID), "code": _text(re.compile(f"^[{PAIR_CODE_ALPHABET}]{{8}}$"))},
                {"via": _text(re.compile(r"^(qr|typed)$"))})
STATS = ({"d": _text(DEVICE_ID)}, {
    "fps": _number(0, 1000), "inf_ms": _number(0, 600_000), "queue": _number(0, 10**9, integer=True),
    "temp": _number(-60, 200), "disk_mb": _number(0, 10**9, integer=True), "session": _text(NAME),
    "uptime": _number(0, 10**10, integer=True), "camera": _text(re.compile(r"^(ok|stalled|ended)$")),
    "placement": _text(PLACEMENT, MAX_PLACEMENT),  # edge_app/protocol/placement.py
})


def normalize_code(typed: str) -> str:
    """A pairing code as staff type it (any case, spaces and dashes) in canonical form; ProtocolError if not one."""
    code = re.sub(r"[\s-]", "", typed).upper()
    if len(code) != PAIR_CODE_LENGTH or any(ch not in PAIR_CODE_ALPHABET for ch in code):
        raise ProtocolError("bad_code", f"a pairing code is {PAIR_CODE_LENGTH} of {PAIR_CODE_ALPHABET}, "
                                        f"not {typed[:40]!r}")
    return code


def qr_payload(code: str) -> str:
    """The text of the pairing QR code the PC exam client shows: ``INVIGIL:1:<code>``."""
    return QR_PREFIX + normalize_code(code)


def parse_qr(text: str) -> str | None:
    """The pairing code in a decoded QR text, or None for any other QR code."""
    if not text.startswith(QR_PREFIX):
        return None
    try:
        return normalize_code(text[len(QR_PREFIX):])
    except ProtocolError:
        return None


def _check_fields(fields: dict[str, Any], schema: tuple[dict[str, Any], dict[str, Any]], what: str) -> None:
    required, optional = schema
    missing = required.keys() - fields.keys()
    unknown = fields.keys() - required.keys() - optional.keys() - {"v", "id", "t", "sig", "k", "to"}
    if missing or unknown:
        raise ProtocolError("malformed", f"{what}: missing keys {sorted(missing)}, unknown keys {sorted(unknown)}")
    if not isinstance(fields.get("id"), str):
        raise ProtocolError("malformed", f"{what}: id must be a string")
    unb64(fields["id"], 16, "id")
    if not _number(0, 9_999_999_999_999, integer=True)(fields.get("t")):
        raise ProtocolError("malformed", f"{what}: t must be ms since 1970")
    for key, check in {**required, **optional}.items():
        if key in fields and not check(fields[key]):
            raise ProtocolError("malformed", f"{what}: bad value for {key}: {str(fields[key])[:60]!r}")


def _schema(name: str) -> tuple[tuple[dict[str, Any], dict[str, Any]], int]:
    if name == "pair_request":
        return PAIR_REQUEST, 512
    if name not in COMMANDS:
        raise ProtocolError("unknown_command", f"no command {name!r}; known: {', '.join(sorted(COMMANDS))}")
    return COMMANDS[name], MAX_COMMAND_BYTES


def seal(name: str, fields: dict[str, Any], key: Ed25519PrivateKey, now_ms: int, to: str | None = None) -> bytes:
    """A signed message ``name`` (a command, or ``pair_request``) with ``fields``, checked as the receiver will.

    The signature covers the message's name (``k``) and, for a command, the device it is for (``to``), so a
    signed command cannot be replayed as another command or to another unit."""
    schema, max_bytes = _schema(name)
    body = {**fields, "v": VERSION, "id": new_event_id(now_ms), "t": now_ms, "k": name}
    if to is not None:
        body["to"] = to
    body["sig"] = b64(key.sign(signed_bytes(body)))
    payload = canonical(body)
    _check_fields(body, schema, name)
    if len(payload) > max_bytes:
        raise ProtocolError("oversized", f"{name}: {len(payload)} bytes, at most {max_bytes}")
    return payload


def open_signed(name: str, payload: bytes, key: Ed25519PublicKey | None, to: str | None = None) -> dict[str, Any]:
    """Parse and check a signed message; ``key`` None skips only the signature check; ``to`` (a unit's own id)
    requires the message to be addressed to that unit."""
    schema, max_bytes = _schema(name)
    fields = load_message(payload, max_bytes, name)
    _check_fields(fields, schema, name)
    if fields.get("k") != name:
        raise ProtocolError("malformed", f"{name}: k names {str(fields.get('k'))[:30]!r}, not this message")
    if to is not None and fields.get("to") != to:
        raise ProtocolError("wrong_device", f"{name} is addressed to {str(fields.get('to'))[:20]!r}, not {to}")
    if not isinstance(fields.get("sig"), str):
        raise ProtocolError("malformed", f"{name}: sig must be a string")
    signature = unb64(fields["sig"], 64, "sig")
    check_canonical(payload, fields, name)
    if key is not None:
        try:
            key.verify(signature, signed_bytes(fields))
        except InvalidSignature:
            raise ProtocolError("bad_signature", f"{name} {fields['id']} has a bad signature") from None
    return fields


def encode_stats(fields: dict[str, Any], now_ms: int) -> bytes:
    body = {k: v for k, v in fields.items() if v is not None}
    body.update(v=VERSION, id=new_event_id(now_ms), t=now_ms)
    payload = canonical(body)
    _check_fields(body, STATS, "stats")
    if len(payload) > MAX_STATS_BYTES:
        raise ProtocolError("oversized", f"stats: {len(payload)} bytes, at most {MAX_STATS_BYTES}")
    return payload


def decode_stats(payload: bytes) -> dict[str, Any]:
    fields = load_message(payload, MAX_STATS_BYTES, "stats")
    _check_fields(fields, STATS, "stats")
    return fields
