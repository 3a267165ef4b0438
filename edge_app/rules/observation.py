"""What the analysis loop tells the rules engine about one moment: facts, not decisions.

Every field but ``t`` is optional: ``None`` means "not measured at this moment" (each model runs on its
own cadence), which the engine treats differently from a measured "no".
"""

from __future__ import annotations

from dataclasses import dataclass

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in frame pixels


@dataclass(frozen=True)
class Sighting:
    """One object seen (a phone, a book, an extra screen)."""

    label: str
    score: float
    box: Box


@dataclass(frozen=True)
class ViewStats:
    """Image statistics against the calibrated reference view (see :mod:`edge_app.tamper`)."""

    brightness: float  # mean luma 0..255
    contrast: float  # luma standard deviation
    sharpness: float  # edge energy relative to the reference (1.0 = as sharp)
    view_match: float  # similarity of the scene's layout to the reference (1.0 = same view)


@dataclass(frozen=True)
class SpokenKeyword:
    """A keyword of the exam's list heard on the microphone (never a transcript)."""

    word: str
    t: float  # when it began, on the same clock as Observation.t


@dataclass(frozen=True)
class Observation:
    t: float  # seconds (media time for files, monotonic for live sources)
    people: int | None = None  # confirmed people in view (None: the detector did not run)
    candidate: Box | None = None  # the candidate's box when people was measured and one is seen
    in_zone: bool | None = None  # the candidate is inside the calibrated seat zone (None: unknown)
    phones: tuple[Sighting, ...] | None = None  # phones seen (full frame and hand/desk crops)
    materials: tuple[Sighting, ...] | None = None  # books and screens other than the expected PC screen
    yaw_off: float | None = None  # head yaw minus the calibrated baseline, degrees
    pitch_off: float | None = None  # head pitch minus the baseline, degrees (> 0: looking further down)
    lips: float | None = None  # lip movement: spread of the mouth opening over the last second
    dbfs: float | None = None  # audio level of the last chunk
    voice: bool | None = None  # voice activity in the last chunk
    keywords: tuple[SpokenKeyword, ...] | None = None  # keywords heard since the last observation (None: no
    # keyword spotting)
    identity: float | None = None  # similarity of a frontal candidate face to the enrolled template
    view: ViewStats | None = None
