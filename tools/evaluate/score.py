"""Score raised alerts against ground truth: matches, precision, recall and detection delay per kind.

A raised alert matches a truth event of the same kind when its condition interval (``since`` to its end)
overlaps the truth interval; each truth event and each raised alert matches at most once. The delay is
the start message's time minus the truth start; it is on time when it is at most the kind's minimum
duration + 1 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median
from typing import Any

SLACK = 1.0  # seconds allowed beyond the minimum duration


@dataclass(frozen=True)
class Raised:
    kind: str
    t: float  # when the start message went out
    since: float  # when its condition began
    end: float  # when it ended (the session's end if it never did)


@dataclass(frozen=True)
class Truth:
    kind: str
    start: float
    end: float


def raised_alerts(messages: list[dict[str, Any]], session_end: float) -> list[Raised]:
    """Pair the start and end messages of each alert."""
    starts = {m["id"]: m for m in messages if m.get("type") == "alert" and m["phase"] == "start"}
    ends = {m["id"]: m["t"] for m in messages if m.get("type") == "alert" and m["phase"] == "end"}
    return [Raised(m["kind"], m["t"], m["since"], ends.get(uid, session_end)) for uid, m in starts.items()]


def match(truth: list[Truth], raised: list[Raised]) -> list[tuple[Truth, Raised]]:
    pairs = []
    used: set[int] = set()
    for event in sorted(truth, key=lambda e: e.start):
        for i, alert in sorted(enumerate(raised), key=lambda p: p[1].t):
            if i in used or alert.kind != event.kind:
                continue
            if alert.since < event.end and alert.end > event.start:
                used.add(i)
                pairs.append((event, alert))
                break
    return pairs


def score(truth: list[Truth], raised: list[Raised], min_durations: dict[str, float]) -> dict[str, Any]:
    """Per-kind figures plus the list of late or missed truth events and unexpected alerts."""
    pairs = match(truth, raised)
    kinds = sorted({e.kind for e in truth} | {a.kind for a in raised})
    per_kind: dict[str, Any] = {}
    for kind in kinds:
        events = [e for e in truth if e.kind == kind]
        alerts = [a for a in raised if a.kind == kind]
        matched = [(e, a) for e, a in pairs if e.kind == kind]
        delays = [round(a.t - e.start, 2) for e, a in matched]
        per_kind[kind] = {
            "truth": len(events), "raised": len(alerts), "matched": len(matched),
            "precision": round(len(matched) / len(alerts), 3) if alerts else None,
            "recall": round(len(matched) / len(events), 3) if events else None,
            "delay_s": {"median": median(delays), "max": max(delays)} if delays else None,
            "allowed_delay_s": min_durations.get(kind, 0.0) + SLACK,
        }
    matched_truth = {id(e): a for e, a in pairs}
    failures = []
    for event in truth:
        alert = matched_truth.get(id(event))
        allowed = min_durations.get(event.kind, 0.0) + SLACK
        if alert is None:
            failures.append(f"missed {event.kind} {event.start:.1f}-{event.end:.1f} s")
        elif alert.t - event.start > allowed:
            failures.append(f"late {event.kind}: raised {alert.t - event.start:.1f} s after {event.start:.1f} s "
                            f"(allowed {allowed:.1f} s)")
    matched_ids = {id(a) for _, a in pairs}
    unexpected = [f"unexpected {a.kind} at {a.t:.1f} s (since {a.since:.1f} s)" for a in raised
                  if id(a) not in matched_ids]
    return {"kinds": per_kind, "failures": failures, "unexpected": unexpected}
