"""Score raised alerts against ground truth: matches, precision, recall and detection delay per kind.

A raised alert matches a truth event of the same kind when its condition interval (``since`` to its end)
overlaps the truth interval; each truth event and each raised alert matches at most once. The delay is
the start message's time minus the truth start; it is on time when it is at most the truth event's own
``allowed_delay``, fixed in the scenario file (never derived from the rule config, so loosening a rule
cannot loosen its bar). Every raised alert that matches no truth event is a false alert, in any scenario.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median
from typing import Any


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
    allowed_delay: float  # seconds after start by which the start message must go out


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


def delay(event: Truth, alert: Raised) -> float:
    """Seconds from the truth start to the alert's start message (to the centisecond, as reported)."""
    return round(alert.t - event.start, 2)


def score(truth: list[Truth], raised: list[Raised]) -> dict[str, Any]:
    """Per-kind figures, the late or missed truth events and the false alerts (raised, matching no truth)."""
    pairs = match(truth, raised)
    kinds = sorted({e.kind for e in truth} | {a.kind for a in raised})
    per_kind: dict[str, Any] = {}
    for kind in kinds:
        events = [e for e in truth if e.kind == kind]
        alerts = [a for a in raised if a.kind == kind]
        matched = [(e, a) for e, a in pairs if e.kind == kind]
        delays = [delay(e, a) for e, a in matched]
        per_kind[kind] = {
            "truth": len(events), "raised": len(alerts), "matched": len(matched),
            "on_time": sum(1 for e, a in matched if delay(e, a) <= e.allowed_delay),
            "precision": round(len(matched) / len(alerts), 3) if alerts else None,
            "recall": round(len(matched) / len(events), 3) if events else None,
            "delay_s": {"median": median(delays), "max": max(delays)} if delays else None,
        }
    matched_truth = {id(e): a for e, a in pairs}
    failures = []
    for event in truth:
        alert = matched_truth.get(id(event))
        if alert is None:
            failures.append(f"missed {event.kind} {event.start:.1f}-{event.end:.1f} s")
        elif delay(event, alert) > event.allowed_delay:
            failures.append(f"late {event.kind}: raised {delay(event, alert):.1f} s after {event.start:.1f} s "
                            f"(allowed {event.allowed_delay:.1f} s)")
    matched_ids = {id(a) for _, a in pairs}
    false_alerts = [f"false {a.kind} at {a.t:.1f} s (since {a.since:.1f} s)" for a in raised
                    if id(a) not in matched_ids]
    return {"kinds": per_kind, "failures": failures, "false_alerts": false_alerts}


def totals(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-kind figures summed over scored scenarios: precision, recall, on-time share and delays."""
    sums: dict[str, dict[str, Any]] = {}
    for result in results:
        for kind, figures in result["kinds"].items():
            into = sums.setdefault(kind, {"truth": 0, "raised": 0, "matched": 0, "on_time": 0, "delays": []})
            for key in ("truth", "raised", "matched", "on_time"):
                into[key] += figures[key]
            if figures["delay_s"]:
                into["delays"].append(figures["delay_s"]["max"])
    out = {}
    for kind, t in sorted(sums.items()):
        out[kind] = {"truth": t["truth"], "raised": t["raised"], "matched": t["matched"], "on_time": t["on_time"],
                     "false": t["raised"] - t["matched"],
                     "precision": round(t["matched"] / t["raised"], 3) if t["raised"] else None,
                     "recall": round(t["matched"] / t["truth"], 3) if t["truth"] else None,
                     "max_delay_s": max(t["delays"]) if t["delays"] else None}
    return out
