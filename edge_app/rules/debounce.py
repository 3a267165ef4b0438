"""One alert kind's life cycle: vote over a window, minimum duration, hysteresis, cooldown, updates.

Pure: a :class:`KindState` and a sample go in, a new state and at most one :class:`Transition` come out.
A sample is ``None`` when nothing was measured; it leaves the vote as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from edge_app.rules.observation import Box

Phase = Literal["start", "update", "end"]


@dataclass(frozen=True)
class Timing:
    """The timing part of a rule, in seconds (see :class:`edge_app.rules.config.AlertRule`)."""

    min_duration: float
    end_after: float
    cooldown: float
    update_every: float
    window: float
    on_fraction: float


@dataclass(frozen=True)
class Sample:
    """The condition measured at one moment: on or off, how confident, where."""

    on: bool
    score: float = 1.0
    box: Box | None = None
    label: str | None = None  # what was seen or heard, when the alert names it (speech_keyword: the keyword)


@dataclass(frozen=True)
class Transition:
    kind: str
    alert_id: str  # "<kind>-<n>", unique within one engine's life
    phase: Phase
    t: float  # when the transition happened
    since: float  # when the condition began (the alert's start time)
    confidence: float
    severity: str
    box: Box | None = None
    label: str | None = None  # the best on-sample's label in the window


@dataclass(frozen=True)
class KindState:
    samples: tuple[tuple[float, Sample], ...] = ()  # measured samples within the window
    on_since: float | None = None  # the vote has been on since (earliest on-sample of the run)
    off_since: float | None = None  # while active: the vote has been off since
    alert_id: str | None = None  # the active alert
    started: float | None = None  # its condition start
    last_sent: float | None = None  # its last start/update transition
    ended_at: float | None = None  # the last alert's end
    count: int = 0  # alerts raised so far


def vote(samples: tuple[tuple[float, Sample], ...], on_fraction: float) -> bool | None:
    """True when at least ``on_fraction`` of the measured samples are on; None with no samples."""
    if not samples:
        return None
    return sum(s.on for _, s in samples) >= on_fraction * len(samples)


def _evidence(samples: tuple[tuple[float, Sample], ...]) -> tuple[float, Box | None, str | None]:
    on = [s for _, s in samples if s.on]
    if not on:
        return 0.0, None, None
    best = max(on, key=lambda s: s.score)  # the earliest of equal scores
    return sum(s.score for s in on) / len(on), best.box, best.label


def step(
    kind: str, severity: str, timing: Timing, state: KindState, sample: Sample | None, t: float
) -> tuple[KindState, Transition | None]:
    """Advance one kind to time ``t`` with ``sample`` (None: not measured now)."""
    samples = state.samples + (((t, sample),) if sample is not None else ())
    samples = tuple(item for item in samples if item[0] > t - timing.window or item[0] == t)
    state = replace(state, samples=samples)
    voted = vote(samples, timing.on_fraction)
    confidence, box, label = _evidence(samples)

    if state.alert_id is None:
        if voted is False:
            return replace(state, on_since=None), None
        if voted is None:
            return state, None
        on_since = state.on_since
        if on_since is None:
            on_since = min(ts for ts, s in samples if s.on)
        state = replace(state, on_since=on_since)
        cooling = state.ended_at is not None and t - state.ended_at < timing.cooldown
        last_on = max(ts for ts, s in samples if s.on)  # the condition has lasted from on_since to here
        if last_on - on_since < timing.min_duration or cooling:
            return state, None
        alert_id = f"{kind}-{state.count + 1}"
        state = replace(state, alert_id=alert_id, started=on_since, last_sent=t, off_since=None,
                        count=state.count + 1)
        return state, Transition(kind, alert_id, "start", t, on_since, confidence, severity, box, label)

    alert_id, started, last_sent = state.alert_id, state.started, state.last_sent
    assert started is not None and last_sent is not None
    if voted is False or (voted is None and state.off_since is not None):
        off_since = state.off_since if state.off_since is not None else t
        if t - off_since >= timing.end_after:
            ended = Transition(kind, alert_id, "end", t, started, confidence, severity, box, label)
            return replace(state, alert_id=None, started=None, last_sent=None, on_since=None,
                           off_since=None, ended_at=t), ended
        return replace(state, off_since=off_since), None
    if voted:
        state = replace(state, off_since=None)
        if timing.update_every > 0 and t - last_sent >= timing.update_every:
            update = Transition(kind, alert_id, "update", t, started, confidence, severity, box, label)
            return replace(state, last_sent=t), update
    return state, None


def close(kind: str, severity: str, state: KindState, t: float) -> tuple[KindState, Transition | None]:
    """End the active alert now (session stop, shutdown)."""
    if state.alert_id is None or state.started is None:
        return state, None
    confidence, box, label = _evidence(state.samples)
    ended = Transition(kind, state.alert_id, "end", t, state.started, confidence, severity, box, label)
    return replace(state, alert_id=None, started=None, last_sent=None, on_since=None, off_since=None,
                   ended_at=t), ended
