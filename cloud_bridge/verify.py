"""Offline check of a session export (``python -m cloud_bridge verify FILE``): needs no database, no broker and
no network, only this module, the wire contract (edge_app.protocol) and the file.

An export is JSON lines (cloud_bridge/export.py writes it):

1. a header: ``{"type": "invigil-export", "v": 1, "session", "exam", "candidate", "device", "device_key"
   (PEM), "bridge_key" (PEM), "first_seq", "last_seq", "events", "gaps": [[first, last, reason], ...],
   "exported_at"}``;
2. one line per event: ``{"type": "event", "payload": "<the event's exact bytes as the unit signed them>"}``,
   in sequence order;
3. a seal: ``{"type": "seal", "digest": SHA-256 of every byte above it (base64url), "sig": the bridge's
   Ed25519 signature of that digest}``.

Each event must carry a valid signature of the unit over its exact bytes and name the header's device; each
must follow the one before it: the next sequence number, with ``h`` the chain hash of the event before (a
hole is allowed only where the header declares a gap the bridge knew of). The first and last numbers and the
count must be the header's, and the seal must cover the whole file. A changed, removed, reordered or
inserted event fails at its own line; a changed header, a cut end or a forged seal fails at the seal. Who
holds the keys is outside the file: pin them (``--device-key``, ``--bridge-key``) or compare the printed
fingerprints with the published ones.

A regulator feed (``verify-feed``) is canonical JSON with a detached Ed25519 signature of its exact bytes
(:func:`verify_feed`): any changed byte fails.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

from edge_app.protocol import ProtocolError, chain_hash, decode_event
from edge_app.protocol.encoding import b64, unb64

FORMAT = "invigil-export"
HEADER_KEYS = {"type", "v", "session", "exam", "candidate", "device", "device_key", "bridge_key", "first_seq",
               "last_seq", "events", "gaps", "exported_at"}


class ExportInvalid(ValueError):
    """The export fails verification; ``line`` is the 1-based line where it does (0: the file as a whole)."""

    def __init__(self, line: int, detail: str) -> None:
        super().__init__(f"line {line}: {detail}" if line else detail)
        self.line, self.detail = line, detail


@dataclass
class Verified:
    """What a valid export holds."""

    session: str
    exam: str
    device: str
    first_seq: int
    last_seq: int
    events: int
    gaps: list[tuple[int, int, str]] = field(default_factory=list)
    device_fingerprint: str = ""
    bridge_fingerprint: str = ""

    def summary(self) -> str:
        gaps = (", declared gaps " + ", ".join(f"{a}..{b} ({why})" for a, b, why in self.gaps)) if self.gaps else ""
        return (f"valid: session {self.session} of exam {self.exam}, device {self.device}, {self.events} events "
                f"(sequence {self.first_seq}..{self.last_seq}){gaps}; every signature, link and the seal check "
                f"out; device key {self.device_fingerprint}, bridge key {self.bridge_fingerprint}")


def fingerprint(key: Ed25519PublicKey) -> str:
    """A key's short name to compare with a published one: SHA-256 of its raw 32 bytes, first 16, base64url."""
    return b64(hashlib.sha256(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).digest()[:16])


def seal_digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _public_key(pem: Any, what: str, line: int) -> Ed25519PublicKey:
    try:
        key = load_pem_public_key(str(pem).encode())
    except (ValueError, TypeError):
        raise ExportInvalid(line, f"{what} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ExportInvalid(line, f"{what} is not an Ed25519 key")
    return key


def _json_line(raw: bytes, number: int) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportInvalid(number, f"not a JSON line: {exc}") from None
    if not isinstance(value, dict):
        raise ExportInvalid(number, "not a JSON object")
    return value


def _header(raw: bytes) -> dict[str, Any]:
    header = _json_line(raw, 1)
    if header.get("type") != FORMAT or header.get("v") != 1:
        raise ExportInvalid(1, f"not an Invigil export (type {FORMAT!r}, v 1)")
    if header.keys() != HEADER_KEYS:
        raise ExportInvalid(1, f"header keys differ: missing {sorted(HEADER_KEYS - header.keys())}, unknown "
                            f"{sorted(header.keys() - HEADER_KEYS)}")
    for name in ("first_seq", "last_seq", "events"):
        if type(header[name]) is not int or header[name] < 0:
            raise ExportInvalid(1, f"{name} must be a whole number")
    gaps = header["gaps"]
    if not isinstance(gaps, list) or not all(
            isinstance(g, list) and len(g) == 3 and type(g[0]) is int and type(g[1]) is int and g[0] <= g[1]
            and isinstance(g[2], str) for g in gaps):
        raise ExportInvalid(1, "gaps must be a list of [first, last, reason]")
    return header


class _Chain:
    """Walks the events in order: each must follow the last one accepted."""

    def __init__(self, header: dict[str, Any], key: Ed25519PublicKey) -> None:
        self.device, self.key = header["device"], key
        self.declared = {(first, last): reason for first, last, reason in header["gaps"]}
        self.first_seq, self.last_seq = header["first_seq"], header["last_seq"]
        self.previous: tuple[int, bytes] | None = None  # seq and payload of the last event
        self.count = 0

    def add(self, fields: dict[str, Any], number: int) -> None:
        if fields.keys() != {"type", "payload"} or not isinstance(fields["payload"], str):
            raise ExportInvalid(number, "an event line is {\"type\": \"event\", \"payload\": \"...\"}")
        try:
            payload = fields["payload"].encode("ascii")  # the unit's canonical JSON is ASCII
        except UnicodeEncodeError:
            raise ExportInvalid(number, "the event's payload is not the unit's ASCII bytes") from None
        try:
            event = decode_event(payload, self.key)
        except ProtocolError as exc:
            raise ExportInvalid(number, f"event fails its check ({exc.reason}): {exc.detail}") from None
        where = f"event {event.seq}"
        if event.device_id != self.device:
            raise ExportInvalid(number, f"{where} is device {event.device_id}'s, not {self.device}'s (inserted)")
        if self.previous is None:
            if event.seq != self.first_seq:
                raise ExportInvalid(number, f"{where} comes first, the header says {self.first_seq} (the start was "
                                    "removed or changed)")
        else:
            seq, payload_before = self.previous
            if event.seq <= seq:
                raise ExportInvalid(number, f"{where} after event {seq}: out of order or repeated")
            if event.seq > seq + 1:
                hole = (seq + 1, event.seq - 1)
                if hole not in self.declared:
                    raise ExportInvalid(number, f"{where} after event {seq}: events {hole[0]}..{hole[1]} are "
                                        "missing and no gap is declared for them (removed)")
            elif event.prev_hash != chain_hash(payload_before):
                raise ExportInvalid(number, f"{where} does not link to event {seq} before it: its h is not that "
                                    "event's chain hash (one of the two was replaced)")
        self.previous = (event.seq, payload)
        self.count += 1


def verify(data: bytes, device_key: Ed25519PublicKey | None = None,
           bridge_key: Ed25519PublicKey | None = None) -> Verified:
    """Check a whole export; ExportInvalid at the first line that fails. ``device_key``/``bridge_key`` pin
    the keys (the file's own must be the same)."""
    if not data.endswith(b"\n"):
        raise ExportInvalid(0, "the file does not end with a newline: cut short")
    lines = data.split(b"\n")[:-1]
    if len(lines) < 2:
        raise ExportInvalid(0, "an export has a header and a seal at least")
    header = _header(lines[0])
    own_device = _public_key(header["device_key"], "device_key", 1)
    own_bridge = _public_key(header["bridge_key"], "bridge_key", 1)
    for pinned, own, what in ((device_key, own_device, "device"), (bridge_key, own_bridge, "bridge")):
        if pinned is not None and fingerprint(pinned) != fingerprint(own):
            raise ExportInvalid(1, f"the file's {what} key {fingerprint(own)} is not the pinned {fingerprint(pinned)}")
    chain = _Chain(header, own_device)
    for number, raw in enumerate(lines[1:-1], start=2):
        fields = _json_line(raw, number)
        if fields.get("type") != "event":
            raise ExportInvalid(number, f"expected an event line, found type {fields.get('type')!r}")
        chain.add(fields, number)
    end = len(lines)
    seal = _json_line(lines[-1], end)
    if seal.get("type") != "seal" or seal.keys() != {"type", "digest", "sig"}:
        raise ExportInvalid(end, "the last line is not the seal (the end was cut off?)")
    last = chain.previous[0] if chain.previous else None
    if chain.count != header["events"] or (chain.count and last != header["last_seq"]):
        raise ExportInvalid(end, f"{chain.count} events ending at {last}, the header says {header['events']} ending "
                            f"at {header['last_seq']} (events removed at the end)")
    body = data[:len(data) - len(lines[-1]) - 1]
    try:
        digest, signature = unb64(str(seal["digest"]), 32, "digest"), unb64(str(seal["sig"]), 64, "sig")
    except ProtocolError as exc:
        raise ExportInvalid(end, f"seal: {exc.detail}") from None
    if digest != seal_digest(body):
        raise ExportInvalid(end, "the seal's digest is not that of the lines above it (the header or an event "
                            "was changed after export)")
    try:
        own_bridge.verify(signature, digest)
    except InvalidSignature:
        raise ExportInvalid(end, "the seal is not signed by the bridge key in the header") from None
    return Verified(header["session"], header["exam"], header["device"], header["first_seq"], header["last_seq"],
                    chain.count, [(a, b, why) for a, b, why in header["gaps"]], fingerprint(own_device),
                    fingerprint(own_bridge))


# -- the regulator feed (cloud_bridge/regulator.py writes it) -----------------------------------------------------

FEED = "invigil-regulator-feed"


def canonical(value: Any) -> bytes:
    """The one byte form of a JSON value that is signed: keys sorted, no spaces, ASCII."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


@dataclass
class FeedChecked:
    exam: str
    candidates: int
    generated_at: str
    bridge_fingerprint: str

    def summary(self) -> str:
        return (f"valid: regulator feed of exam {self.exam}, {self.candidates} candidate(s), made "
                f"{self.generated_at}; signed by bridge key {self.bridge_fingerprint}")


def verify_feed(data: bytes, signature_file: bytes, bridge_key: Ed25519PublicKey | None = None) -> FeedChecked:
    """Check a feed and its signature file offline; ExportInvalid (line 0) naming what fails. ``bridge_key``
    pins the key (else the feed's own, whose fingerprint the summary prints to compare with the published one)."""
    try:
        value = json.loads(data)
        sig = json.loads(signature_file)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportInvalid(0, f"not JSON: {exc}") from None
    if not isinstance(value, dict) or value.get("type") != FEED or value.get("v") != 1:
        raise ExportInvalid(0, f"not an Invigil regulator feed (type {FEED!r}, v 1)")
    if not isinstance(sig, dict) or sig.get("alg") != "Ed25519" or not isinstance(sig.get("sig"), str):
        raise ExportInvalid(0, "the signature file is not {\"alg\": \"Ed25519\", \"key\": ..., \"sig\": ...}")
    own = _public_key(value.get("bridge_key"), "bridge_key", 0)
    if bridge_key is not None and fingerprint(bridge_key) != fingerprint(own):
        raise ExportInvalid(0, f"the feed's bridge key {fingerprint(own)} is not the pinned {fingerprint(bridge_key)}")
    try:
        signature = unb64(sig["sig"], 64, "sig")
    except ProtocolError as exc:
        raise ExportInvalid(0, f"signature: {exc.detail}") from None
    try:
        own.verify(signature, data)
    except InvalidSignature:
        raise ExportInvalid(0, "the signature does not match the feed's bytes (changed after signing, or "
                            "signed by another key)") from None
    if canonical(value) != data:  # signed, yet not canonical: not what the bridge writes
        raise ExportInvalid(0, "the feed is not in canonical form")
    candidates = value.get("candidates")
    return FeedChecked(str(value.get("exam")), len(candidates) if isinstance(candidates, list) else 0,
                       str(value.get("generated_at")), fingerprint(own))
