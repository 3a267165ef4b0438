"""Device signatures checked with libsodium (PyNaCl): the bridge's costliest step per event, off the GIL.

``cryptography``'s Ed25519 verify holds Python's GIL for all of its ~0.14 ms, so the bridge's consumer
threads, its MQTT network threads and a commit's wait could not overlap with it: on two cores it alone
held ingest to about 0.4 of a consumer that does nothing. libsodium's check is faster and runs with the
GIL released (cffi lets go of it around every C call), so signatures are checked while other threads work.

libsodium is the stricter of the two: besides everything RFC 8032 asks, it refuses non-canonical and
small-order points (in the key and in R), which no honest signer produces. So it accepts no signature
that ``cryptography`` refuses; the unit signs with ``cryptography`` and every test event passes both.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey


class SodiumKey:
    """A device's Ed25519 public key whose ``verify(signature, data)`` is libsodium's; raises
    ``InvalidSignature`` as ``cryptography``'s does (edge_app.protocol.SignatureCheck)."""

    def __init__(self, key: Ed25519PublicKey) -> None:
        self.key = key
        self._sodium = VerifyKey(key.public_bytes(Encoding.Raw, PublicFormat.Raw))

    def verify(self, signature: bytes, data: bytes) -> None:
        if len(signature) != 64:  # libsodium would read a shorter one as signature + message
            raise InvalidSignature
        try:
            self._sodium.verify(data, signature)
        except BadSignatureError:
            raise InvalidSignature from None
