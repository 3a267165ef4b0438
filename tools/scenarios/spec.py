"""Scenario definitions (``scenarios/<name>.toml``): a timeline of what the camera sees and hears, plus truth.

A definition lists contiguous visual ``segments`` (camera state, the seated candidate's pose, extra
people, props), ``sounds`` (speech from espeak-ng, loud bangs) and the ``alerts`` that are true. The
alerts are checked against what the segments and sounds show (:func:`implied_alerts`), so a definition
cannot claim an alert its video does not contain, nor leave one out.
"""

from __future__ import annotations

import itertools
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tools.scenarios.catalog import EXTRAS, PEOPLE, POSES, PROPS, BookProp, PhoneProp

AlertKind = Literal["absent", "left_zone", "extra_person", "phone", "material", "gaze_away", "talking",
                    "loud_audio", "identity_mismatch", "camera_tamper"]
MIN_CALIBRATION = 5.0  # seconds of plain view the device calibrates on
MIN_ALERT = 8.0  # a condition lasts this long so a debounced alert can start and end
MIN_LOUD = 3.0  # loud_audio is a short event
MIN_TAIL = 5.0  # seconds of normal view after every alert ends
GLANCE_MAX = 3.0  # a look away this short is a glance (at the keyboard, the clock): honest, no alert
PASSING_MAX = 4.0  # someone walking through the view crosses it in at most this long: honest, no alert
EPS = 1e-6


class SpecError(ValueError):
    """A scenario definition that cannot be rendered, naming the file, the field and what was expected."""


class Segment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: float = Field(..., ge=0, description="seconds from the start of the video")
    end: float = Field(..., gt=0, description="seconds from the start of the video (exclusive)")
    camera: Literal["normal", "covered", "knocked"] = Field("normal", description="covered: a hand over the lens; "
                                                             "knocked: the camera turned away from its view")
    candidate: str | None = Field(None, description="the seated person's pose (catalog POSES); none: empty seat")
    extras: list[str] = Field(default_factory=list, description="other people in view (catalog EXTRAS)")
    props: list[str] = Field(default_factory=list, description="objects in view (catalog PROPS)")

    @field_validator("candidate")
    @classmethod
    def _known_pose(cls, value: str | None) -> str | None:
        if value is not None and value not in POSES:
            raise ValueError(f"unknown pose {value!r}; expected one of {', '.join(sorted(POSES))}")
        return value

    @field_validator("extras")
    @classmethod
    def _known_extras(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v not in EXTRAS]
        if unknown:
            raise ValueError(f"unknown people {unknown}; expected names from {', '.join(sorted(EXTRAS))}")
        return value

    @field_validator("props")
    @classmethod
    def _known_props(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v not in PROPS]
        if unknown:
            raise ValueError(f"unknown props {unknown}; expected names from {', '.join(sorted(PROPS))}")
        return value


class SpeechSound(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["speech"] = Field(..., description="espeak-ng reads ``text`` until ``end``")
    start: float = Field(..., ge=0, description="seconds")
    end: float = Field(..., gt=0, description="seconds")
    text: str = Field(..., min_length=1, description="what is said (repeated to fill the interval)")
    voice: str = Field("en-us", description="espeak-ng voice")
    level_dbfs: float = Field(-26.0, ge=-50, le=-14, description="RMS level of the speech, dBFS")


class BangsSound(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["bangs"] = Field(..., description="real recorded bangs and a door slam, back to back")
    start: float = Field(..., ge=0, description="seconds")
    end: float = Field(..., gt=0, description="seconds")
    level_dbfs: float = Field(-6.0, ge=-10, le=-1, description="RMS level over the event, dBFS (loud: >= -10)")


Sound = Annotated[SpeechSound | BangsSound, Field(discriminator="type")]


class AlertSpan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: AlertKind = Field(..., description="alert kind the device should raise")
    start: float = Field(..., ge=0, description="seconds: when the condition becomes visible/audible")
    end: float = Field(..., gt=0, description="seconds: when it stops")
    allowed_delay: float = Field(..., gt=0, le=30, description="seconds after ``start`` by which the alert's start "
                                 "message must go out; fixed here, never derived from the rule config")


class ScenarioSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., pattern=r"^[a-z0-9_]+$", description="the file's stem")
    description: str = Field(..., min_length=1, description="what happens, for people")
    view: Literal["close", "mounted"] = Field(..., description="close: the camera faces the candidate; mounted: "
                                              "the unit's place, about 1 m behind and 45 degrees to the side")
    set: Literal["tuning", "check"] = Field(..., description="tuning: thresholds and presets may be chosen on it; "
                                            "check: judges them and is never tuned on")
    duration: float = Field(..., ge=MIN_CALIBRATION, le=600, description="seconds of video and audio")
    fps: float = Field(10.0, ge=1, le=30, description="frames per second")
    frame_size: tuple[int, int] = Field((640, 480), description="[width, height]; the studio scene is 640x480")
    enrolled: str = Field(..., description="fixture photo of the enrolled identity (tools/fixtures.py PHOTOS)")
    calibration_seconds: float = Field(..., ge=MIN_CALIBRATION, description="plain view at the start")
    seed: int = Field(1, ge=0, description="seed of the camera shake and sensor noise")
    segments: list[Segment] = Field(..., min_length=1, description="what is seen, contiguous from 0 to duration")
    sounds: list[Sound] = Field(default_factory=list, description="what is heard besides room tone")
    alerts: list[AlertSpan] = Field(default_factory=list, description="the truth: alerts the device should raise")

    @field_validator("enrolled")
    @classmethod
    def _known_photo(cls, value: str) -> str:
        if value not in PEOPLE:
            raise ValueError(f"unknown photo {value!r}; expected one of {', '.join(sorted(PEOPLE))}")
        return value

    @field_validator("frame_size")
    @classmethod
    def _scene_size(cls, value: tuple[int, int]) -> tuple[int, int]:
        if tuple(value) != (640, 480):
            raise ValueError(f"the studio scene is rendered at [640, 480], got {list(value)}")
        return value

    @model_validator(mode="after")
    def _timeline(self) -> ScenarioSpec:
        at = 0.0
        for i, seg in enumerate(self.segments):
            if seg.end <= seg.start:
                raise ValueError(f"segments[{i}]: end {seg.end} is not after start {seg.start}")
            if abs(seg.start - at) > EPS:
                word = "overlaps" if seg.start < at else "leaves a gap after"
                raise ValueError(f"segments[{i}]: starts at {seg.start}, which {word} the previous segment's end {at}")
            at = seg.end
        if abs(at - self.duration) > EPS:
            raise ValueError(f"segments: end at {at}, expected them to cover the whole duration {self.duration}")
        self._check_sounds()
        self._check_walkers()
        self._check_calibration()
        self._check_alerts()
        return self

    def _check_sounds(self) -> None:
        spans = sorted((s.start, s.end, i) for i, s in enumerate(self.sounds))
        for start, end, i in spans:
            if end <= start or end > self.duration + EPS:
                raise ValueError(f"sounds[{i}]: {start}..{end} s is not an interval inside 0..{self.duration}")
        for (_, end_a, a), (start_b, _, b) in itertools.pairwise(spans):
            if start_b < end_a - EPS:
                raise ValueError(f"sounds[{b}]: overlaps sounds[{a}]")

    def _check_walkers(self) -> None:
        for i, seg in enumerate(self.segments):
            walkers = [name for name in seg.extras if EXTRAS[name].walk_to is not None]
            if walkers and seg.end - seg.start > PASSING_MAX + EPS:
                raise ValueError(f"segments[{i}]: {walkers} walk through the view in {seg.end - seg.start:g} s; "
                                 f"someone passing by takes at most {PASSING_MAX:g} s (stand them still instead)")

    def _check_alerts(self) -> None:
        for i, alert in enumerate(self.alerts):
            if alert.end <= alert.start or alert.end > self.duration + EPS:
                raise ValueError(f"alerts[{i}] ({alert.kind}): {alert.start}..{alert.end} s is outside the video "
                                 f"(0..{self.duration} s) or empty")
            shortest = MIN_LOUD if alert.kind == "loud_audio" else MIN_ALERT
            if alert.end - alert.start < shortest - EPS:
                raise ValueError(f"alerts[{i}] ({alert.kind}): lasts {alert.end - alert.start:g} s, needs >= "
                                 f"{shortest:g} s so a debounced alert can start and end")
            if alert.end > self.duration - MIN_TAIL + EPS:
                raise ValueError(f"alerts[{i}] ({alert.kind}): ends at {alert.end} s; the scenario needs "
                                 f">= {MIN_TAIL:g} s of normal view after it (duration {self.duration} s)")
            if alert.start < self.calibration_seconds - EPS:
                raise ValueError(f"alerts[{i}] ({alert.kind}): starts at {alert.start} s, during calibration "
                                 f"(the first {self.calibration_seconds} s)")
        declared = sorted((a.kind, round(a.start, 6), round(a.end, 6)) for a in self.alerts)
        implied = sorted((k, round(s, 6), round(e, 6)) for k, s, e in implied_alerts(self))
        if declared != implied:
            missing = [a for a in implied if a not in declared]
            extra = [a for a in declared if a not in implied]
            raise ValueError(f"alerts: do not match the segments and sounds; missing {missing}, not shown {extra}")

    def _check_calibration(self) -> None:
        enrolled = PEOPLE[self.enrolled]
        for i, seg in enumerate(self.segments):
            if seg.start >= self.calibration_seconds - EPS:
                break
            pose = POSES.get(seg.candidate) if seg.candidate else None
            plain = (seg.camera == "normal" and pose is not None and pose.person == enrolled and pose.gaze == "ahead"
                     and not pose.talking and not seg.extras and not seg.props)
            if not plain:
                raise ValueError(f"segments[{i}]: the first {self.calibration_seconds} s must show the enrolled "
                                 f"candidate ({enrolled}) seated, looking ahead, alone, camera normal")
        for i, sound in enumerate(self.sounds):
            if sound.start < self.calibration_seconds - EPS:
                raise ValueError(f"sounds[{i}]: starts during calibration (the first {self.calibration_seconds} s)")


def implied_alerts(spec: ScenarioSpec) -> list[tuple[str, float, float]]:
    """Alert intervals the segments and sounds show; a covered or knocked camera shows only camera_tamper.

    Honest behaviours imply nothing: a look away of at most GLANCE_MAX seconds (a glance), and someone
    walking through the view (at most PASSING_MAX seconds, checked by the definition).
    """
    raw: list[tuple[str, float, float]] = []
    enrolled = PEOPLE[spec.enrolled]
    for seg in spec.segments:
        kinds: list[str] = []
        if seg.camera != "normal":
            kinds.append("camera_tamper")
        else:
            pose = POSES.get(seg.candidate) if seg.candidate else None
            if pose is None:
                kinds.append("absent")
            else:
                kinds += ["identity_mismatch"] if pose.person != enrolled else []
                kinds += ["gaze_away"] if pose.gaze != "ahead" else []
                kinds += ["talking"] if pose.talking else []
            kinds += ["extra_person"] if any(EXTRAS[name].walk_to is None for name in seg.extras) else []
            kinds += ["phone"] if any(isinstance(PROPS[p], PhoneProp) for p in seg.props) else []
            kinds += ["material"] if any(isinstance(PROPS[p], BookProp) for p in seg.props) else []
        raw += [(kind, seg.start, seg.end) for kind in kinds]
    for sound in spec.sounds:
        raw.append(("talking" if sound.type == "speech" else "loud_audio", sound.start, sound.end))
    merged: list[tuple[str, float, float]] = []
    for kind, start, end in sorted(raw):
        if merged and merged[-1][0] == kind and start <= merged[-1][2] + EPS:
            merged[-1] = (kind, merged[-1][1], max(end, merged[-1][2]))
        else:
            merged.append((kind, start, end))
    return [(kind, start, end) for kind, start, end in merged
            if not (kind == "gaze_away" and end - start <= GLANCE_MAX + EPS)]


def phone_photos(spec: ScenarioSpec) -> set[str]:
    """The labelled phone photos the scenario's props are cut from (not in the repository; see sources)."""
    return {prop.photo for seg in spec.segments for name in seg.props
            if isinstance(prop := PROPS[name], PhoneProp)}


def load_spec(path: Path) -> ScenarioSpec:
    """Read and validate ``path``; SpecError names the file, the field and what was wrong."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"{path}: scenario definition not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: not valid TOML ({exc})") from exc
    try:
        spec = ScenarioSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'definition'}: "
                             f"{e['msg'].removeprefix('Value error, ')}" for e in exc.errors())
        raise SpecError(f"{path}: {problems}") from None
    if spec.name != path.stem:
        raise SpecError(f"{path}: name: {spec.name!r} must match the file name {path.stem!r}")
    return spec
