"""libsodium's check of device signatures agrees with cryptography's: what the unit signs passes, any altered
byte of the signature or the signed bytes fails with cryptography's own InvalidSignature."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidSignature

from cloud_bridge.signatures import SodiumKey
from tests.bridge.parts import DEVICE_KEY, OTHER_KEY

DATA = b'{"c":90,"d":"unit-1","h":"","id":"AZ2x","k":"ph","n":1,"p":"s","s":2,"t":1,"v":1}'


def test_a_signature_the_unit_made_passes_both_checks() -> None:
    signature = DEVICE_KEY.sign(DATA)
    DEVICE_KEY.public_key().verify(signature, DATA)
    SodiumKey(DEVICE_KEY.public_key()).verify(signature, DATA)


@pytest.mark.parametrize("where", ["signature", "data", "key", "short"])
def test_anything_altered_fails_as_it_does_with_cryptography(where: str) -> None:
    signature, data, key = bytearray(DEVICE_KEY.sign(DATA)), bytearray(DATA), DEVICE_KEY.public_key()
    if where == "signature":
        signature[40] ^= 1
    elif where == "data":
        data[5] ^= 1
    elif where == "key":
        key = OTHER_KEY.public_key()
    else:
        signature = signature[:63]
    with pytest.raises(InvalidSignature):
        key.verify(bytes(signature), bytes(data))
    with pytest.raises(InvalidSignature):
        SodiumKey(key).verify(bytes(signature), bytes(data))
