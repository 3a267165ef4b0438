"""The offline check of an export: each way of tampering fails at its own line, pinned keys hold."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from cloud_bridge.export import export_session
from cloud_bridge.services import Services
from cloud_bridge.sessions import Sessions
from cloud_bridge.store import Store
from cloud_bridge.verify import ExportInvalid, fingerprint, seal_digest, verify
from edge_app.protocol.encoding import b64
from edge_app.protocol.keys import public_pem
from tests.bridge.parts import BRIDGE_KEY, DEVICE_KEY, OTHER_KEY, PHOTO, event_payloads, register
from tests.bridge.test_export import stored

Lines = list[bytes]


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A session of unit-1 with events 1..8 (lines 2..9: event n on line n + 1)."""
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('export') / 'bridge.db'}")
    register(store, "unit-1")
    sessions = Sessions(store)
    view = sessions.create("math-101", "cand-7", PHOTO)
    sessions.pair("unit-1", view.pairing_code or "")
    stored(Services.build(store), event_payloads(8))
    data = export_session(store, view.session_id, BRIDGE_KEY)
    store.close()
    return data


def event_of(line: bytes) -> dict[str, object]:
    return json.loads(json.loads(line)["payload"])


def rewrite_event(line: bytes, **changes: object) -> bytes:
    fields = event_of(line)
    fields.update(changes)
    payload = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return json.dumps({"type": "event", "payload": payload}).encode() + b"\n"


def other_units_event() -> bytes:
    return json.dumps({"type": "event", "payload": event_payloads(3, "unit-2", OTHER_KEY)[2].decode()}).encode() + b"\n"


def resealed(lines: Lines, key=OTHER_KEY) -> Lines:  # type: ignore[no-untyped-def]
    """A forger's seal over changed lines, with their own bridge key put in the header."""
    header = json.loads(lines[0])
    header["bridge_key"] = public_pem(key)
    body = [json.dumps(header).encode() + b"\n", *lines[1:-1]]
    digest = seal_digest(b"".join(body))
    return [*body, json.dumps({"type": "seal", "digest": b64(digest), "sig": b64(key.sign(digest))}).encode() + b"\n"]


def swap(lines: Lines, a: int, b: int) -> Lines:
    lines[a], lines[b] = lines[b], lines[a]
    return lines


TAMPERING: list[tuple[str, Callable[[Lines], Lines], int, str]] = [
    ("a changed confidence", lambda ls: [*ls[:4], rewrite_event(ls[4], c=10), *ls[5:]], 5, "bad_signature"),
    ("another signature", lambda ls: [*ls[:3], rewrite_event(ls[3], sig="A" * 86), *ls[4:]], 4, "bad_signature"),
    ("a removed event", lambda ls: [*ls[:5], *ls[6:]], 6, "missing and no gap"),
    ("two events swapped", lambda ls: swap(ls, 3, 4), 4, "missing and no gap"),
    ("an event repeated", lambda ls: [*ls[:5], ls[4], *ls[5:]], 6, "out of order or repeated"),
    ("another unit's event inserted", lambda ls: [*ls[:3], other_units_event(), *ls[3:]], 4, "bad_signature"),
    ("the first event removed", lambda ls: [ls[0], *ls[2:]], 2, "comes first"),
    ("the last event removed", lambda ls: [*ls[:-2], ls[-1]], 9, "events removed at the end"),
    ("the candidate changed in the header", lambda ls: [ls[0].replace(b"cand-7", b"cand-8"), *ls[1:]], 10,
     "seal's digest"),
    ("the seal cut off", lambda ls: ls[:-1], 9, "not the seal"),
    ("a line that is not JSON", lambda ls: [*ls[:2], b"{oops\n", *ls[2:]], 3, "not a JSON line"),
    ("the header changed and resealed with another key", lambda ls: resealed(
        [ls[0].replace(b"cand-7", b"cand-8"), *ls[1:]]), 1, "not the pinned"),
]


@pytest.mark.parametrize(("name", "tamper", "line", "detail"), TAMPERING, ids=[t[0] for t in TAMPERING])
def test_tampering_fails_at_its_line(export: bytes, name: str, tamper: Callable[[Lines], Lines], line: int,
                                     detail: str) -> None:
    assert verify(export, DEVICE_KEY.public_key(), BRIDGE_KEY.public_key()).events == 8
    with pytest.raises(ExportInvalid) as failed:
        verify(b"".join(tamper(export.splitlines(keepends=True))), DEVICE_KEY.public_key(), BRIDGE_KEY.public_key())
    assert (failed.value.line, detail in failed.value.detail) == (line, True), str(failed.value)


def test_a_reseal_passes_unpinned_but_shows_another_fingerprint(export: bytes) -> None:
    lines = resealed(export.splitlines(keepends=True))
    result = verify(b"".join(lines))  # internally consistent: only the keys' fingerprints tell
    assert result.bridge_fingerprint == fingerprint(OTHER_KEY.public_key())
    assert result.bridge_fingerprint != fingerprint(BRIDGE_KEY.public_key())


def test_an_event_signed_by_another_key_with_the_header_key_swapped_fails_pinned(export: bytes) -> None:
    lines = export.splitlines(keepends=True)
    header = json.loads(lines[0])
    header["device_key"] = public_pem(OTHER_KEY)
    lines[0] = json.dumps(header).encode() + b"\n"
    with pytest.raises(ExportInvalid) as failed:
        verify(b"".join(lines), DEVICE_KEY.public_key())
    assert failed.value.line == 1 and "device key" in failed.value.detail


def test_the_command_line_verifies_and_names_the_line(export: bytes, tmp_path: Path) -> None:
    from cloud_bridge.__main__ import main

    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    good.write_bytes(export)
    lines = export.splitlines(keepends=True)
    bad.write_bytes(b"".join([*lines[:5], *lines[6:]]))
    assert main(["verify", str(good)]) == 0
    assert main(["verify", str(bad)]) == 1
