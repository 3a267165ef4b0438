"""The regulator feed (cloud_bridge/regulator.py) on SQLite and PostgreSQL: per candidate, risk with its breakdown
and the decisions, canonical JSON signed by the bridge; verified offline (cloud_bridge.verify.verify_feed, the
``verify-feed`` command), and any changed byte fails. Over HTTP: the exam's viewers only, audited."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_bridge import audit
from cloud_bridge.__main__ import main
from cloud_bridge.decisions import Decisions
from cloud_bridge.regulator import feed
from cloud_bridge.store import Store
from cloud_bridge.tokens import Tokens
from cloud_bridge.verify import ExportInvalid, canonical, verify_feed
from cloud_bridge.web import create_app
from cloud_bridge.web.review_auth import REVIEW, ReviewSettings
from edge_app.protocol.keys import public_pem
from tests.bridge.parts import BRIDGE_KEY, T0
from tests.bridge.review_parts import paired_session


def exam(store: Store) -> tuple[str, str]:
    """Two candidates of math-101: one with a confirmed phone alert, one quiet; the first's session id."""
    first = paired_session(store, candidate="cand-1")
    phone = first.unit.alert(T0 + 60, T0 + 120, "phone")
    Decisions(store, clock=lambda: T0 + 600).decide(first.session_id, phone, "confirmed", "seen", "rita",
                                                    "staff:rita")
    paired_session(store, candidate="cand-2", device="unit-2", services=first.services)
    return first.session_id, phone


def test_the_feed_holds_each_candidates_risk_and_decisions_and_verifies(store: Store) -> None:
    session_id, phone = exam(store)
    body, signature = feed(store, "math-101", BRIDGE_KEY, now=T0 + 3600)
    value = json.loads(body)
    assert canonical(value) == body  # the exact bytes that were signed
    assert (value["type"], value["exam"], value["bridge_key"]) == ("invigil-regulator-feed", "math-101",
                                                                     public_pem(BRIDGE_KEY))
    first, second = value["candidates"]
    assert (first["candidate"], first["session"], second["candidate"]) == ("cand-1", session_id, "cand-2")
    assert first["score"] > second["score"] and [d["name"] for d in first["dimensions"]] == ["alerts", "health", "pc"]
    alert = first["alerts"][0]
    assert (alert["alert_id"], alert["kind"], alert["status"]) == (phone, "phone", "confirmed")
    assert [(d["verdict"], d["reviewer"], d["note"]) for d in alert["decisions"]] == [("confirmed", "rita", "seen")]
    assert second["alerts"] == [] and second["decision"] == {"status": "undecided", "decisions": []}
    checked = verify_feed(body, signature, BRIDGE_KEY.public_key())
    assert (checked.exam, checked.candidates) == ("math-101", 2) and "valid" in checked.summary()


def test_any_changed_byte_or_another_key_fails(store: Store) -> None:
    exam(store)
    body, signature = feed(store, "math-101", BRIDGE_KEY, now=T0 + 3600)
    for index in (0, len(body) // 3, body.index(b'"confirmed"') + 2, len(body) - 1):
        changed = bytearray(body)
        changed[index] = changed[index] ^ 0x01
        with pytest.raises(ExportInvalid):
            verify_feed(bytes(changed), signature)
    with pytest.raises(ExportInvalid, match="signature does not match"):  # a changed score, still valid JSON
        verify_feed(body.replace(b'"score":', b'"score":1', 1), signature)
    other = Ed25519PrivateKey.generate()
    with pytest.raises(ExportInvalid, match="pinned"):
        verify_feed(body, signature, other.public_key())
    forged, forged_sig = feed(store, "math-101", other, now=T0 + 3600)
    with pytest.raises(ExportInvalid, match="signature does not match"):  # another key's signature, this body
        verify_feed(body, forged_sig)
    assert verify_feed(forged, forged_sig).bridge_fingerprint != verify_feed(body, signature).bridge_fingerprint


def test_the_route_and_the_commands(store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exam(store)
    other = paired_session(store, exam="physics-2", candidate="cand-9", device="unit-3")
    app = create_app(other.services)
    app.extensions[REVIEW] = ReviewSettings(BRIDGE_KEY)
    token = Tokens(store).create("proctor", "math desk", ["math-101"])
    web = app.test_client()
    response = web.get("/api/v1/exams/math-101/regulator-feed", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    signature = response.headers["X-Invigil-Signature"].encode()
    assert verify_feed(response.data, signature, BRIDGE_KEY.public_key()).candidates == 2
    assert web.get("/api/v1/exams/physics-2/regulator-feed",
                   headers={"Authorization": f"Bearer {token}"}).status_code == 403
    assert [e["target"] for e in audit.entries(store) if e["action"] == "export"] == ["math-101"]

    (tmp_path / "feed.json").write_bytes(response.data)
    (tmp_path / "feed.json.sig").write_bytes(signature)
    (tmp_path / "bridge.pub").write_text(public_pem(BRIDGE_KEY))
    assert main(["verify-feed", str(tmp_path / "feed.json"), "--bridge-key", str(tmp_path / "bridge.pub")]) == 0
    assert "valid: regulator feed of exam math-101, 2 candidate(s)" in capsys.readouterr().out
    (tmp_path / "feed.json").write_bytes(response.data.replace(b"cand-2", b"cand-3"))
    assert main(["verify-feed", str(tmp_path / "feed.json")]) == 1
    assert "INVALID" in capsys.readouterr().err
