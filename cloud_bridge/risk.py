"""A session's risk score (0-100) over both angles, always with its breakdown: a pure function of the session's
timeline and the weights in the bridge config (``[review]``). docs/review.md explains each dimension with a
worked example.

Three dimensions, each worth at most its ``points``; the score is their sum:

- **alerts** (the unit's camera and microphone): every alert's duration in seconds (at least
  ``min_alert_seconds``, at most ``max_alert_seconds``) times its kind's weight, its severity's factor and its
  confidence; their sum, against ``alerts_full`` weighted seconds, gives the share of the points;
- **health** (could the unit see?): seconds offline against ``offline_full``, events lost in chain gaps
  against ``lost_full``, and a placement that never became usable: each a third of the points;
- **pc** (the exam PC's own events): each event's kind weight, summed against ``pc_full``.

A dimension saturates (a share of 1) rather than run past its points, so one long alert cannot hide that
nothing else happened, and the breakdown says what each dimension counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RiskWeights(BaseModel):
    """``[review]`` weights of the risk score (docs/review.md)."""

    model_config = ConfigDict(extra="forbid")

    kinds: dict[str, float] = Field(default_factory=lambda: {
        "phone": 1.0, "extra_person": 1.0, "material": 0.8, "identity_mismatch": 1.0, "speech_keyword": 0.6,
        "talking": 0.4, "camera_tamper": 0.8, "left_zone": 0.5, "absent": 0.5, "gaze_away": 0.3,
        "loud_audio": 0.1, "device_offline": 0.0, "events_refused": 0.0,
        "events_missing": 0.0},
        description="weight of a second of each alert kind (a kind not listed weighs 0.5); device_offline, "
                    "events_refused and events_missing count under health instead")
    severities: dict[str, float] = Field(default_factory=lambda: {"info": 0.25, "warning": 0.6, "critical": 1.0},
                                         description="factor of each severity")
    min_alert_seconds: float = Field(default=2.0, gt=0, description="an alert counts at least this long")
    max_alert_seconds: float = Field(default=300.0, gt=0, description="and at most this long")
    alerts_full: float = Field(default=120.0, gt=0, description="weighted alert seconds for the alerts' full points")
    offline_full: float = Field(default=300.0, gt=0, description="seconds offline that give health's offline third")
    lost_full: int = Field(default=20, gt=0, description="events lost in chain gaps that give health's gaps third")
    pc_kinds: dict[str, float] = Field(default_factory=lambda: {
        "focus_lost": 1.0, "screen_share_stopped": 3.0, "second_monitor": 3.0, "copy_paste": 1.0,
        "answer_submitted": 0.0, "focus_back": 0.0, "screen_share_started": 0.0},
        description="weight of each exam-PC event kind (a kind not listed weighs 1); a return to normal weighs 0")
    pc_full: float = Field(default=10.0, gt=0, description="weighted PC events that give the PC's full points")
    points: dict[str, float] = Field(default_factory=lambda: {"alerts": 60.0, "health": 25.0, "pc": 15.0},
                                     description="the most each dimension gives; they should add up to 100")


@dataclass(frozen=True)
class AlertSpan:
    kind: str
    severity: str
    confidence: float  # 0..1
    start: float  # seconds, any clock shared by the timeline
    end: float | None  # None: still open at the end of the timeline


@dataclass
class Timeline:
    """What the score reads of one session."""

    start: float
    end: float
    alerts: list[AlertSpan] = field(default_factory=list)
    offline: list[tuple[float, float | None]] = field(default_factory=list)  # device_offline stretches
    lost_events: int = 0  # in chain gaps never filled
    placement_usable: bool | None = None  # None: the unit never said
    pc_events: list[tuple[str, float]] = field(default_factory=list)  # kind, time


@dataclass(frozen=True)
class Dimension:
    name: str
    points: float  # what it gives, 0..most
    most: float
    measure: float  # what it counted (weighted seconds, shares, weighted events)
    detail: str


@dataclass(frozen=True)
class RiskScore:
    score: int  # 0..100
    dimensions: tuple[Dimension, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"score": self.score, "dimensions": [
            {"name": d.name, "points": round(d.points, 1), "most": d.most, "measure": round(d.measure, 2),
             "detail": d.detail} for d in self.dimensions]}


def _duration(start: float, end: float | None, timeline_end: float) -> float:
    return max(0.0, (timeline_end if end is None else end) - start)


def _alerts(timeline: Timeline, weights: RiskWeights) -> Dimension:
    weighted, per_kind = 0.0, dict[str, float]()
    for alert in timeline.alerts:
        kind_weight = weights.kinds.get(alert.kind, 0.5)
        seconds = min(max(_duration(alert.start, alert.end, timeline.end), weights.min_alert_seconds),
                      weights.max_alert_seconds)
        value = seconds * kind_weight * weights.severities.get(alert.severity, 1.0) * alert.confidence
        weighted += value
        per_kind[alert.kind] = per_kind.get(alert.kind, 0.0) + value
    most = weights.points.get("alerts", 0.0)
    parts = ", ".join(f"{kind} {value:.0f}" for kind, value in sorted(per_kind.items(), key=lambda kv: -kv[1])
                      if value > 0)
    detail = (f"{weighted:.0f} weighted alert seconds ({parts}) of {weights.alerts_full:g} for full points"
              if parts else "no alert that counts")
    return Dimension("alerts", most * min(1.0, weighted / weights.alerts_full), most, weighted, detail)


def _health(timeline: Timeline, weights: RiskWeights) -> Dimension:
    offline = sum(_duration(start, end, timeline.end) for start, end in timeline.offline)
    shares = (min(1.0, offline / weights.offline_full), min(1.0, timeline.lost_events / weights.lost_full),
              1.0 if timeline.placement_usable is False else 0.0)
    most = weights.points.get("health", 0.0)
    placement = {True: "placement usable", False: "placement never usable", None: "placement not reported"}[
        timeline.placement_usable]
    detail = (f"{offline:.0f} s offline (of {weights.offline_full:g}), {timeline.lost_events} events lost in gaps "
              f"(of {weights.lost_full}), {placement}")
    return Dimension("health", most * sum(shares) / 3, most, sum(shares) / 3, detail)


def _pc(timeline: Timeline, weights: RiskWeights) -> Dimension:
    counts: dict[str, int] = {}
    for kind, _at in timeline.pc_events:
        counts[kind] = counts.get(kind, 0) + 1
    weighted = sum(weights.pc_kinds.get(kind, 1.0) * n for kind, n in counts.items())
    most = weights.points.get("pc", 0.0)
    parts = ", ".join(f"{kind} x{n}" for kind, n in sorted(counts.items()))
    detail = f"{weighted:g} weighted PC events ({parts}) of {weights.pc_full:g}" if counts else "no PC event"
    return Dimension("pc", most * min(1.0, weighted / weights.pc_full), most, weighted, detail)


def risk_score(timeline: Timeline, weights: RiskWeights | None = None) -> RiskScore:
    """The session's score and its breakdown."""
    weights = weights or RiskWeights()
    dimensions = (_alerts(timeline, weights), _health(timeline, weights), _pc(timeline, weights))
    return RiskScore(min(100, round(sum(d.points for d in dimensions))), dimensions)
