"""The ``evidence_purge`` command's check: a signed list of snapshot digests (the events' ``e``), 1-500 of them,
for one unit."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_app.protocol import ProtocolError, evidence_digest
from edge_app.protocol.commands import MAX_PURGE_DIGESTS, open_signed, seal

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(7, 39)))
NOW_MS = 1_800_000_000_000
DIGEST = evidence_digest(hashlib.sha256(b"a snapshot").hexdigest())


def test_a_sealed_purge_opens_with_its_digests_for_its_unit() -> None:
    payload = seal("evidence_purge", {"digests": [DIGEST]}, KEY, NOW_MS, to="unit-1")
    assert open_signed("evidence_purge", payload, KEY.public_key(), to="unit-1")["digests"] == [DIGEST]
    with pytest.raises(ProtocolError) as other:
        open_signed("evidence_purge", payload, KEY.public_key(), to="unit-2")
    assert other.value.reason == "wrong_device"


@pytest.mark.parametrize("digests", [
    [], ["short"], [DIGEST + "A"], [DIGEST[:-1] + "+"], [DIGEST[:-1] + "/"], "not-a-list", [1],
    [DIGEST] * (MAX_PURGE_DIGESTS + 1),
])
def test_bad_digest_lists_are_refused(digests: object) -> None:
    with pytest.raises(ProtocolError) as refused:
        seal("evidence_purge", {"digests": digests}, KEY, NOW_MS, to="unit-1")
    assert refused.value.reason == "malformed"


def test_a_purge_signed_by_another_key_or_replayed_as_another_command_is_refused() -> None:
    payload = seal("evidence_purge", {"digests": [DIGEST]}, Ed25519PrivateKey.generate(), NOW_MS, to="unit-1")
    with pytest.raises(ProtocolError) as forged:
        open_signed("evidence_purge", payload, KEY.public_key(), to="unit-1")
    assert forged.value.reason == "bad_signature"
    genuine = seal("evidence_purge", {"digests": [DIGEST]}, KEY, NOW_MS, to="unit-1")
    with pytest.raises(ProtocolError):
        open_signed("receipt", genuine, KEY.public_key(), to="unit-1")
