"""Per-kind conditions: one :class:`Observation` -> one :class:`Sample` (or None: not measured).

``active`` says whether the kind's alert is running, for the kinds whose threshold has hysteresis.
"""

from __future__ import annotations

from collections.abc import Callable

from edge_app.rules import config as rc
from edge_app.rules.debounce import Sample
from edge_app.rules.observation import Observation, Sighting

SCREEN_LABELS = frozenset({"tv", "laptop"})


def _best(sightings: tuple[Sighting, ...], min_score: float) -> Sighting | None:
    kept = [s for s in sightings if s.score >= min_score]
    return max(kept, key=lambda s: s.score) if kept else None


def camera_tamper(obs: Observation, rule: rc.TamperRule, active: bool) -> Sample | None:
    view = obs.view
    if view is None:
        return None
    covered = view.brightness < rule.min_brightness or view.contrast < rule.min_contrast
    blurred = view.sharpness < rule.min_sharpness
    moved = view.view_match < rule.min_view_match
    score = 1.0 - min(1.0, view.view_match) if moved and not (covered or blurred) else 1.0
    return Sample(covered or blurred or moved, score)


def absent(obs: Observation, rule: rc.AbsentRule, active: bool) -> Sample | None:
    if obs.people is None:
        return None
    return Sample(obs.candidate is None)


def left_zone(obs: Observation, rule: rc.LeftZoneRule, active: bool) -> Sample | None:
    if obs.people is None or obs.candidate is None or obs.in_zone is None:
        return None
    return Sample(not obs.in_zone, box=obs.candidate)


def extra_person(obs: Observation, rule: rc.ExtraPersonRule, active: bool) -> Sample | None:
    if obs.people is None:
        return None
    return Sample(obs.people > rule.max_people)


def phone(obs: Observation, rule: rc.PhoneRule, active: bool) -> Sample | None:
    if obs.phones is None:
        return None
    best = _best(obs.phones, rule.min_score)
    return Sample(True, best.score, best.box) if best else Sample(False)


def material(obs: Observation, rule: rc.MaterialRule, active: bool) -> Sample | None:
    if obs.materials is None:
        return None
    items = obs.materials if rule.screens else tuple(s for s in obs.materials if s.label not in SCREEN_LABELS)
    best = _best(items, rule.min_score)
    return Sample(True, best.score, best.box) if best else Sample(False)


def gaze_away(obs: Observation, rule: rc.GazeRule, active: bool) -> Sample | None:
    if obs.yaw_off is None or obs.pitch_off is None:
        return None
    scale = rule.release if active else 1.0
    yaw_ratio = abs(obs.yaw_off) / (rule.yaw_deg * scale)
    down_ratio = obs.pitch_off / (rule.down_deg * scale)
    ratio = max(yaw_ratio, down_ratio)
    return Sample(ratio >= 1.0, min(1.0, ratio / 2), obs.candidate)


def talking(obs: Observation, rule: rc.TalkingRule, active: bool) -> Sample | None:
    voice = obs.voice if rule.use_audio else None
    if obs.lips is None and voice is None:
        return None
    moving = obs.lips is not None and obs.lips >= rule.lips
    return Sample(moving or bool(voice), 1.0 if (moving and voice) else 0.7)


def loud_audio(obs: Observation, rule: rc.LoudAudioRule, active: bool) -> Sample | None:
    if obs.dbfs is None:
        return None
    threshold = rule.dbfs - (rule.release_db if active else 0.0)
    return Sample(obs.dbfs >= threshold, min(1.0, max(0.0, (obs.dbfs - threshold) / 20 + 0.5)))


def speech_keyword(obs: Observation, rule: rc.SpeechKeywordRule, active: bool) -> Sample | None:
    if obs.keywords is None:
        return None
    wanted = set(rule.keywords)
    heard = [k for k in obs.keywords if k.word in wanted]
    return Sample(True, 1.0, label=min(heard, key=lambda k: k.t).word) if heard else Sample(False)


def identity_mismatch(obs: Observation, rule: rc.IdentityRule, active: bool) -> Sample | None:
    if obs.identity is None:
        return None
    return Sample(obs.identity < rule.min_similarity, 1.0 - obs.identity, obs.candidate)


Condition = Callable[[Observation, rc.AlertRule, bool], Sample | None]
CONDITIONS: dict[str, Condition] = {
    "camera_tamper": camera_tamper,  # type: ignore[dict-item]
    "absent": absent,  # type: ignore[dict-item]
    "left_zone": left_zone,  # type: ignore[dict-item]
    "extra_person": extra_person,  # type: ignore[dict-item]
    "phone": phone,  # type: ignore[dict-item]
    "material": material,  # type: ignore[dict-item]
    "gaze_away": gaze_away,  # type: ignore[dict-item]
    "talking": talking,  # type: ignore[dict-item]
    "loud_audio": loud_audio,  # type: ignore[dict-item]
    "speech_keyword": speech_keyword,  # type: ignore[dict-item]
    "identity_mismatch": identity_mismatch,  # type: ignore[dict-item]
}
# Kinds judged from the picture: while the camera is covered or moved they are not measured.
VISION_KINDS = frozenset({"absent", "left_zone", "extra_person", "phone", "material", "gaze_away",
                          "identity_mismatch"})
