"""The regulator feed of an exam: per candidate, the session's risk score with its breakdown and the reviewers'
decisions, as canonical JSON (keys sorted, no spaces, ASCII) signed by the bridge's key: a detached Ed25519
signature over the exact bytes (:func:`feed`). Anyone checks it offline with
:func:`cloud_bridge.verify.verify_feed` (``python -m cloud_bridge verify-feed FILE``): a changed byte fails.

The feed::

    {"type": "invigil-regulator-feed", "v": 1, "exam", "generated_at", "bridge_key" (PEM), "weights",
     "candidates": [{"candidate", "session", "device", "state", "start", "end", "score", "dimensions",
                     "decision": {"status", "decisions": [...]},
                     "alerts": [{"alert_id", "kind", "severity", "confidence", "start", "duration",
                                 "status", "decisions": [{"verdict", "reviewer", "decided_at", "note",
                                                          "supersedes"}]}]}]}

The signature file (``FILE.sig``) is ``{"alg": "Ed25519", "key": <the key's fingerprint>, "sig": <base64url>}``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_bridge.decisions import DecisionView, Status
from cloud_bridge.review import SessionReview, rank_exam
from cloud_bridge.risk import RiskWeights
from cloud_bridge.store import Store
from cloud_bridge.verify import FEED, canonical, fingerprint
from edge_app.protocol.encoding import b64
from edge_app.protocol.keys import public_pem


def _decisions(status: Status | None) -> dict[str, Any]:
    def one(d: DecisionView) -> dict[str, Any]:
        return {"id": d.id, "verdict": d.verdict, "reviewer": d.reviewer, "decided_at": round(d.decided_at, 3),
                "note": d.note, "supersedes": d.supersedes}
    return {"status": status.status if status else "undecided",
            "decisions": [one(d) for d in status.history] if status else []}


def _candidate(review: SessionReview) -> dict[str, Any]:
    t = review.timeline
    alerts = []
    for alert in t.alerts:
        decided = _decisions(review.statuses.get(alert.alert_id))
        alerts.append({"alert_id": alert.alert_id, "kind": alert.kind, "severity": alert.severity,
                       "confidence": round(alert.confidence, 2), "start": round(alert.start, 3),
                       "duration": round(alert.duration(t.end), 1), **decided})
    return {"candidate": t.candidate_id, "session": t.session_id, "device": t.device_id, "state": t.state,
            "start": round(t.start, 3), "end": round(t.end, 3), **review.score.as_dict(),
            "decision": _decisions(review.statuses.get(None)), "alerts": alerts}


def feed(store: Store, exam_id: str, key: Ed25519PrivateKey, weights: RiskWeights | None = None,
         now: float | None = None) -> tuple[bytes, bytes]:
    """The exam's feed (canonical JSON) and its detached signature file (JSON)."""
    weights = weights or RiskWeights()
    at = time.time() if now is None else now
    reviews = sorted(rank_exam(store, exam_id, weights, at), key=lambda r: (r.timeline.candidate_id,
                                                                             r.timeline.session_id))
    body = canonical({"type": FEED, "v": 1, "exam": exam_id,
                      "generated_at": datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds"),
                      "bridge_key": public_pem(key), "weights": weights.model_dump(),
                      "candidates": [_candidate(review) for review in reviews]})
    signature = canonical({"alg": "Ed25519", "key": fingerprint(key.public_key()), "sig": b64(key.sign(body))})
    return body, signature + b"\n"
