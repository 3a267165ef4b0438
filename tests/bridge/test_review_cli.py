"""``python -m cloud_bridge export`` and ``verify``: an exported session verifies; a cut one names its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud_bridge.__main__ import main
from cloud_bridge.services import Services
from cloud_bridge.sessions import Sessions
from cloud_bridge.store import Store
from edge_app.protocol.keys import load_or_create_key, public_pem
from tests.bridge.parts import DEVICE_KEY, PHOTO, event_payloads, register
from tests.bridge.test_export import stored
from tests.bridge.test_main import config_file


def test_export_then_verify_with_pinned_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = config_file(tmp_path)
    store = Store(f"sqlite:///{tmp_path / 'bridge.db'}")
    register(store, "unit-1")
    sessions = Sessions(store)
    view = sessions.create("math-101", "cand-7", PHOTO)
    sessions.pair("unit-1", view.pairing_code or "")
    stored(Services.build(store), event_payloads(5))
    store.close()
    out = tmp_path / "session.jsonl"
    assert main(["export", "--config", str(config), "--session", view.session_id, "--out", str(out)]) == 0
    device_pem, bridge_pem = tmp_path / "unit.pem", tmp_path / "bridge.pem"
    device_pem.write_text(public_pem(DEVICE_KEY))
    bridge_pem.write_text(public_pem(load_or_create_key(tmp_path / "bridge.key")))
    capsys.readouterr()
    assert main(["verify", str(out), "--device-key", str(device_pem), "--bridge-key", str(bridge_pem)]) == 0
    assert "valid: session" in capsys.readouterr().out
    lines = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join([*lines[:3], *lines[4:]]))  # event 3 (line 4) removed
    assert main(["verify", str(out)]) == 1
    assert "INVALID at line 4: event 4 after event 2" in capsys.readouterr().err


def test_export_of_an_unknown_session_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = config_file(tmp_path)
    assert main(["export", "--config", str(config), "--session", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "no session nope" in capsys.readouterr().err
