"""Encoding primitives of the wire contract (see the package's docstring): the one canonical JSON form,
canonical unpadded base64url, the signed part of a payload, and the error every check raises."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

VERSION = 1
BASE64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_VALUE = {digit: value for value, digit in enumerate(_DIGITS)}
_STANDARD = bytes.maketrans(b"-_", b"+/")
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)  # json.dumps's, built once


class ProtocolError(ValueError):
    """A message that does not follow the contract; ``reason`` is a short code for dead-letter tables."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str, size: int, field: str) -> bytes:
    """The ``size`` bytes of canonical unpadded base64url ``text``, or ProtocolError."""
    check_b64(text, size, field)
    return binascii.a2b_base64(text.encode("ascii").translate(_STANDARD) + b"=" * (-len(text) % 4))


def check_b64(text: str, size: int, field: str) -> None:
    """ProtocolError unless ``text`` is canonical unpadded base64url of ``size`` bytes (:func:`unb64` without the
    decoding, which cannot fail then)."""
    if not BASE64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ProtocolError("malformed", f"{field} is not base64url")
    held = len(text) * 6 // 8
    if held != size:
        raise ProtocolError("malformed", f"{field} must hold {size} bytes, not {held}")
    # the last digit's unused low bits set: another text for the same bytes
    if text and _VALUE[text[-1]] & ((1 << (len(text) * 6 - size * 8)) - 1):
        raise ProtocolError("not_canonical", f"{field} is not canonical base64url (unused bits set)")


def canonical(fields: dict[str, Any]) -> bytes:
    return _CANONICAL.encode(fields).encode("ascii")


def check_canonical(payload: bytes, fields: dict[str, Any], what: str) -> None:
    """ProtocolError ``not_canonical`` unless ``payload`` is byte for byte the canonical JSON of ``fields``:
    spacing, key order, escapes, duplicate keys or trailing bytes would let other bytes carry one signature."""
    expected = canonical(fields)
    if payload != expected:
        at = next((i for i, (a, b) in enumerate(zip(payload, expected, strict=False)) if a != b),
                  min(len(payload), len(expected)))
        raise ProtocolError("not_canonical", f"{what}: not canonical JSON (sorted keys, no spaces, \\u escapes "
                            f"only for non-ASCII, nothing after the object): differs at byte {at}")


def signed_bytes(fields: dict[str, Any]) -> bytes:
    """What ``sig`` signs: the canonical payload with its ``,"sig":"..."`` member cut out."""
    return canonical({k: v for k, v in fields.items() if k != "sig"})


def signed_part(payload: bytes, fields: dict[str, Any]) -> bytes:
    """:func:`signed_bytes` of a payload already checked canonical (``check_canonical``), cut from its bytes
    instead of encoded again: ``sig`` is never the first key and no other value can hold its quoted member."""
    member = b',"sig":"' + str(fields["sig"]).encode("ascii") + b'"'
    at = payload.find(member)
    return payload[:at] + payload[at + len(member):] if at > 0 else signed_bytes(fields)


def load_message(payload: bytes, max_bytes: int, what: str) -> dict[str, Any]:
    """The JSON object of a version-1 message, or ProtocolError (oversized, malformed, unknown_version)."""
    if len(payload) > max_bytes:
        raise ProtocolError("oversized", f"{what}: {len(payload)} bytes, at most {max_bytes}")
    try:
        fields = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError("malformed", f"{what}: not JSON: {exc}") from None
    except RecursionError:  # a few KiB of '[' nest deeper than the parser goes
        raise ProtocolError("malformed", f"{what}: JSON nested too deeply") from None
    if not isinstance(fields, dict):
        raise ProtocolError("malformed", f"{what}: not a JSON object")
    if type(fields.get("v")) is not int or fields["v"] != VERSION:  # JSON true == 1 in Python
        raise ProtocolError("unknown_version", f"{what}: schema version {fields.get('v')!r}, this side speaks "
                                               f"{VERSION}")
    return fields
