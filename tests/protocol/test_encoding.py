"""check_b64 is unb64 without the decoding: the same verdict, reason and detail for every text."""

from __future__ import annotations

import base64

import pytest

from edge_app.protocol.encoding import ProtocolError, b64, check_b64, unb64

TEXTS = ["", "A", "AA", "AAA", "AAAA", "AQ", "AR", "AAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAB",
         "AAAAAAAAAAAAAAAAAAAAAA=", "AAAAAAAAAAAAAAAAAAAAA+", "AAAAAAAAAAAAAAAAAAAAA/", "AAAAAAAAAAAAAAAAAAAAA\n",
         "AAAAAAAAAAAAAAAAAAAAAé", b64(bytes(range(16))), b64(bytes(range(64))), b64(b"\xff" * 16)]


def verdict(check, text: str, size: int) -> tuple[str, str] | None:
    try:
        check(text, size, "f")
    except ProtocolError as exc:
        return exc.reason, exc.detail
    return None


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("size", [0, 1, 2, 15, 16, 64])
def test_check_b64_agrees_with_unb64(text: str, size: int) -> None:
    assert verdict(check_b64, text, size) == verdict(unb64, text, size)
    if verdict(unb64, text, size) is None:
        assert unb64(text, size, "f") == base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
