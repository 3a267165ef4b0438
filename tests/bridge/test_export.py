"""Session exports on SQLite and PostgreSQL: the session's range of the unit's chain, holes declared, sealed, and
verified offline by cloud_bridge.verify."""

from __future__ import annotations

import json

import pytest

from cloud_bridge.export import ExportError, export_session
from cloud_bridge.services import Services
from cloud_bridge.sessions import Sessions
from cloud_bridge.store import Store
from cloud_bridge.verify import ExportInvalid, verify
from edge_app.protocol import device_topic
from tests.bridge.parts import BRIDGE_KEY, DEVICE_KEY, PHOTO, event_payloads

TOPIC = device_topic("unit-1", "event")


def stored(services: Services, payloads: list[bytes]) -> None:
    outcomes = services.dispatcher.handle_batch([(TOPIC, payload) for payload in payloads])
    assert outcomes == ["stored"] * len(payloads)


def session_with_events(store: Store, sessions: Sessions, skip: set[int] | None = None) -> tuple[str, list[bytes]]:
    """Events 1-2 before pairing, 3-10 during the session (less ``skip``), 11-12 after it ended."""
    services = Services.build(store)
    chain = event_payloads(12)
    stored(services, chain[:2])
    view = sessions.create("math-101", "cand-7", PHOTO)
    sessions.pair("unit-1", view.pairing_code or "")
    stored(services, [p for seq, p in enumerate(chain[2:10], start=3) if seq not in (skip or set())])
    sessions.end(view.session_id)
    stored(services, chain[10:])
    return view.session_id, chain


def test_an_export_holds_the_sessions_events_and_verifies(store: Store, sessions: Sessions) -> None:
    session_id, chain = session_with_events(store, sessions)
    data = export_session(store, session_id, BRIDGE_KEY, clock=lambda: 1_800_000_000.0)
    lines = [json.loads(line) for line in data.splitlines()]
    header = lines[0]
    assert (header["session"], header["exam"], header["candidate"], header["device"]) == (
        session_id, "math-101", "cand-7", "unit-1")
    assert (header["first_seq"], header["last_seq"], header["events"], header["gaps"]) == (3, 10, 8, [])
    assert [line["payload"].encode() for line in lines[1:-1]] == chain[2:10]  # the exact bytes, in order
    assert lines[-1]["type"] == "seal"
    result = verify(data, DEVICE_KEY.public_key(), BRIDGE_KEY.public_key())
    assert (result.events, result.first_seq, result.last_seq, result.gaps) == (8, 3, 10, [])
    assert "valid" in result.summary()


def test_a_hole_the_bridge_never_filled_is_declared_and_passes(store: Store, sessions: Sessions) -> None:
    session_id, _chain = session_with_events(store, sessions, skip={6, 7})
    data = export_session(store, session_id, BRIDGE_KEY)
    header = json.loads(data.splitlines()[0])
    assert header["gaps"] == [[6, 7, "missing"]] and header["events"] == 6
    assert verify(data).gaps == [(6, 7, "missing")]


def test_no_such_session_and_an_unpaired_one_are_refused(store: Store, sessions: Sessions) -> None:
    with pytest.raises(ExportError, match="no session"):
        export_session(store, "nope", BRIDGE_KEY)
    view = sessions.create("math-101", "cand-8", PHOTO)
    with pytest.raises(ExportError, match="never paired"):
        export_session(store, view.session_id, BRIDGE_KEY)


def test_an_export_with_its_declared_gap_removed_fails_at_the_seal(store: Store, sessions: Sessions) -> None:
    session_id, _chain = session_with_events(store, sessions, skip={6})
    lines = export_session(store, session_id, BRIDGE_KEY).splitlines(keepends=True)
    header = json.loads(lines[0])
    header["gaps"] = []
    lines[0] = json.dumps(header).encode() + b"\n"
    with pytest.raises(ExportInvalid) as failed:
        verify(b"".join(lines))
    assert failed.value.line == 5 and "missing" in failed.value.detail  # event 7 follows event 5 (line 4)
