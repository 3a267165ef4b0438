"""The rules engine: (observation, state) -> (alert transitions, state). Pure: no I/O, no clock.

Kinds are evaluated in a fixed order, camera_tamper first: while its vote is on, the picture cannot be
trusted, so the vision kinds get no sample (their alerts neither start nor end on a covered camera). A kind
switched off while its alert runs (new rules mid-session) has that alert ended at the next observation.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from edge_app.rules.config import KIND_RULES, RulesConfig
from edge_app.rules.debounce import KindState, Transition, close, step, vote
from edge_app.rules.observation import Observation
from edge_app.rules.signals import CONDITIONS, VISION_KINDS


@dataclass(frozen=True)
class EngineState:
    kinds: dict[str, KindState] = field(default_factory=lambda: {k: KindState() for k in KIND_RULES})
    t: float | None = None  # time of the last observation

    def active(self) -> dict[str, str]:
        """kind -> alert id of the alerts running now."""
        return {k: s.alert_id for k, s in self.kinds.items() if s.alert_id is not None}


def evaluate(config: RulesConfig, state: EngineState, obs: Observation) -> tuple[list[Transition], EngineState]:
    """Advance every enabled kind to ``obs.t``. Observations must come in time order."""
    if state.t is not None and obs.t < state.t:
        raise ValueError(f"observation at t={obs.t} is older than the last one (t={state.t})")
    transitions: list[Transition] = []
    kinds = dict(state.kinds)
    tampered = False
    for kind in KIND_RULES:
        rule = config.rule(kind)
        current = kinds[kind]
        if not rule.enabled:  # switched off (a thresholds command): a running alert ends now, votes start afresh
            new, transition = close(kind, rule.severity, current, obs.t)
            kinds[kind] = replace(new, samples=(), on_since=None)
            if transition is not None:
                transitions.append(transition)
            continue
        sample = None if (tampered and kind in VISION_KINDS) else CONDITIONS[kind](
            obs, rule, current.alert_id is not None)
        new, transition = step(kind, rule.severity, rule.timing(), current, sample, obs.t)
        kinds[kind] = new
        if transition is not None:
            transitions.append(transition)
        if kind == "camera_tamper":
            tampered = bool(vote(new.samples, rule.on_fraction))
    return transitions, replace(state, kinds=kinds, t=obs.t)


def close_all(config: RulesConfig, state: EngineState, t: float) -> tuple[list[Transition], EngineState]:
    """End every running alert at ``t`` (session stop or shutdown)."""
    transitions = []
    kinds = dict(state.kinds)
    for kind, current in state.kinds.items():
        new, transition = close(kind, config.rule(kind).severity, current, t)
        kinds[kind] = new
        if transition is not None:
            transitions.append(transition)
    return transitions, replace(state, kinds=kinds, t=t)
