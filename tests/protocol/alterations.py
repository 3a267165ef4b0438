"""Alterations of a signed payload that keep what it means (and so, once, its signature): each must be refused.

Used by the protocol tests (decode_event) and the bridge's ingest tests (dead-lettered with the reason).
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable

BASE64URL_ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"


def _other_unused_bits(text: str) -> str:
    """The same bytes with the unused low bits of the last base64url character set (64 or 16 bytes: 4 bits)."""
    last = BASE64URL_ALPHABET.index(text[-1])
    return text[:-1] + BASE64URL_ALPHABET[(last & ~0b1111) | 0b0101]


def _field(key: str, change: Callable[[str], str]) -> Callable[[bytes], bytes]:
    def alter(payload: bytes) -> bytes:
        value = json.loads(payload)[key]
        return payload.replace(f'"{key}":"{value}"'.encode(), f'"{key}":"{change(value)}"'.encode(), 1)
    return alter


def _escape_first_letter(payload: bytes) -> bytes:
    kind = json.loads(payload)["k"]
    return payload.replace(f'"k":"{kind}"'.encode(), f'"k":"\\u{ord(kind[0]):04x}{kind[1:]}"'.encode(), 1)


def _keys_unsorted(payload: bytes) -> bytes:
    fields = json.loads(payload)
    return json.dumps({"v": fields.pop("v"), **fields}, separators=(",", ":")).encode()


def _duplicate_key(payload: bytes) -> bytes:  # the parser keeps the last value: the same fields again
    return b'{"c":0,' + payload[1:]


# name -> (alter, the reason it is refused with)
ALTERATIONS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "trailing_space": (lambda p: p + b" ", "not_canonical"),
    "trailing_newline": (lambda p: p + b"\n", "not_canonical"),
    "leading_space": (lambda p: b" " + p, "not_canonical"),
    "space_after_colon": (lambda p: p.replace(b'":', b'": ', 1), "not_canonical"),
    "space_after_comma": (lambda p: p.replace(b",", b", ", 1), "not_canonical"),
    "keys_unsorted": (_keys_unsorted, "not_canonical"),
    "unicode_escape": (_escape_first_letter, "not_canonical"),
    "duplicate_key": (_duplicate_key, "not_canonical"),
    "utf8_bom": (lambda p: b"\xef\xbb\xbf" + p, "not_canonical"),
    "sig_unused_bits": (_field("sig", _other_unused_bits), "not_canonical"),
    "id_unused_bits": (_field("id", _other_unused_bits), "not_canonical"),
    "sig_padded": (_field("sig", lambda v: v + "=="), "malformed"),
}
