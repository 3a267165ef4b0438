"""``python -m cloud_bridge report``, ``regulator-feed`` (then ``verify-feed``) and ``purge`` on a config's store."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from cloud_bridge import audit
from cloud_bridge.__main__ import main
from cloud_bridge.decisions import Decisions
from cloud_bridge.store import Store
from cloud_bridge.store.models import Evidence, OutboxMessage, Purge
from edge_app.protocol import device_topic
from tests.bridge.parts import T0
from tests.bridge.review_parts import paired_session
from tests.bridge.test_main import config_file


def test_report_feed_and_purge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = config_file(tmp_path)
    store = Store(f"sqlite:///{tmp_path / 'bridge.db'}")
    scene = paired_session(store)
    alert = scene.unit.alert(T0 + 10, T0 + 20, snapshot=b"\xff\xd8 not really a jpeg")
    two_days_ago = time.time() - 2 * 86_400  # the purge command reads the wall clock: the grace (24 h) is over
    Decisions(store, clock=lambda: two_days_ago).decide(scene.session_id, alert, "dismissed", "", "rita", "staff:rita")
    store.close()

    out = tmp_path / "reports"
    assert main(["report", "--config", str(config), "--session", scene.session_id, "--out", str(out)]) == 0
    assert (out / f"session-{scene.session_id}.html").read_text().count("data:image/jpeg;base64,") == 1
    assert (out / f"session-{scene.session_id}.pdf").read_bytes().startswith(b"%PDF-")  # the odd JPEG: named
    assert main(["report", "--config", str(config), "--session", "nope", "--out", str(out)]) == 1

    feed = tmp_path / "feed.json"
    assert main(["regulator-feed", "--config", str(config), "--exam", "math-101", "--out", str(feed)]) == 0
    capsys.readouterr()
    assert main(["verify-feed", str(feed)]) == 0
    assert "1 candidate(s)" in capsys.readouterr().out

    assert main(["purge", "--config", str(config), "--dry-run"]) == 0
    assert " dismissed " in capsys.readouterr().out
    store = Store(f"sqlite:///{tmp_path / 'bridge.db'}")
    try:
        with store.session() as session:
            assert session.scalars(select(Evidence.digest)).all() != []  # a dry run deletes nothing
        assert main(["purge", "--config", str(config), "--by", "chair"]) == 0
        assert "1 snapshot(s) purged (1 dismissed)" in capsys.readouterr().out
        with store.session() as session:
            assert session.scalars(select(Evidence.digest)).all() == []
            assert session.scalars(select(Purge.by)).all() == ["chair"]
            assert len(session.scalars(select(OutboxMessage.topic).where(  # for the running bridge's relay
                OutboxMessage.topic == device_topic("unit-1", "cmd/evidence_purge"))).all()) == 1
        exported = [(e["actor"], e["target"]) for e in audit.entries(store) if e["action"] == "export"]
        assert exported == [("cli", scene.session_id), ("cli", "math-101")]
    finally:
        store.close()
