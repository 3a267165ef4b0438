"""Validate a render by its construction, never by the models it will judge.

Every visible element of a segment is a known layer (see :func:`tools.scenarios.compose.layers`), so
where it lands, how much of it stays in the frame and how much nearer layers hide are facts of the
render. So are the sound levels, measured on the mixed track. A render whose phone is half off the
frame, whose extra person hides behind the candidate or whose speech is too quiet to count is refused
here, whatever a detector would make of it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tools.scenarios import audio
from tools.scenarios.catalog import EXTRAS, PROPS, PastedPerson
from tools.scenarios.compose import View, layers, view_of
from tools.scenarios.scene import HEIGHT, WIDTH, SceneAssets
from tools.scenarios.spec import ScenarioSpec

SOLID = 0.5  # alpha above which a layer pixel counts as drawn
MIN_VISIBLE = {"prop": 0.9, "extra": 0.35, "candidate": 0.6}  # share of a layer's own pixels left in view
MIN_VISIBLE_BEHIND_DESK = (0.35, 0.75)  # a prop held low shows between a third and three quarters of itself
MIN_FACE_VISIBLE = 0.8  # share of an extra person's face box neither off-frame nor behind nearer layers
MIN_PROP_SIDE = 24  # pixels: the shorter side of a prop's box
SPEECH_TOLERANCE_DB = 1.5  # measured speech level against the definition's level
LOUD_DBFS = -10.0  # loud_audio: the bangs' RMS over their interval
QUIET_DBFS = -50.0  # room tone outside every sound


def box_of(mask: np.ndarray) -> list[int] | None:
    ys, xs = np.nonzero(mask)
    return None if xs.size == 0 else [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


def measure_view(assets: SceneAssets, view: View, seconds: float) -> dict[str, dict[str, Any]]:
    """Per named layer: its box in the frame, its drawn pixels and the share of them nearer layers leave visible
    (what fell outside the frame is not drawn; a prop's box touching the edge tells that)."""
    named = layers(assets, view, seconds)
    masks = [(name, layer[1] > SOLID) for name, layer in named]
    out: dict[str, dict[str, Any]] = {}
    nearer = np.zeros((HEIGHT, WIDTH), bool)
    for name, mask in reversed(masks):
        drawn = int(mask.sum())
        visible = int((mask & ~nearer).sum())
        out[name] = {"box": box_of(mask), "pixels": drawn, "visible": round(visible / drawn, 3) if drawn else 0.0}
        if name.startswith("prop:") and getattr(PROPS[name.split(":", 1)[1]], "behind_desk", False):
            out[name]["behind_desk"] = True
        person = EXTRAS.get(name.split(":", 1)[1]) if name.startswith("extra:") else None
        if person is not None and person.walk_to is not None:  # someone walking by enters and leaves the frame
            out[name]["walking"] = True
        elif person is not None:
            out[name]["face_visible"] = face_visible(person, nearer)
        nearer |= mask
    return dict(reversed(list(out.items())))


def face_visible(person: PastedPerson, nearer: np.ndarray) -> float:
    """Share of the pasted person's face square that is inside the frame and not behind nearer layers."""
    half = person.face_side / 2
    x1, y1 = person.at[0] - half, person.at[1] - half
    x2, y2 = person.at[0] + half, person.at[1] + half
    area = (x2 - x1) * (y2 - y1)
    cx1, cy1, cx2, cy2 = (max(0, round(x1)), max(0, round(y1)), min(WIDTH, round(x2)), min(HEIGHT, round(y2)))
    if cx2 <= cx1 or cy2 <= cy1:
        return 0.0
    seen = float((~nearer[cy1:cy2, cx1:cx2]).sum())
    return round(seen / area, 3)


def problems_of(name: str, figures: dict[str, Any]) -> list[str]:
    kind = name.split(":", 1)[0]
    found: list[str] = []
    if figures.get("walking"):
        return found
    if figures.get("behind_desk"):
        low, high = MIN_VISIBLE_BEHIND_DESK
        if not low <= figures["visible"] <= high:
            found.append(f"{name}: {figures['visible']:.0%} visible above the desk, needs {low:.0%}..{high:.0%}")
    elif kind in MIN_VISIBLE and figures["visible"] < MIN_VISIBLE[kind]:
        found.append(f"{name}: {figures['visible']:.0%} visible, needs >= {MIN_VISIBLE[kind]:.0%}")
    if kind == "prop":
        box = figures["box"]
        if box is None or min(box[2] - box[0], box[3] - box[1]) < MIN_PROP_SIDE:
            found.append(f"{name}: box {box} is smaller than {MIN_PROP_SIDE} px")
        elif box[0] <= 0 or box[1] <= 0 or box[2] >= WIDTH or (box[3] >= HEIGHT and not figures.get("behind_desk")):
            found.append(f"{name}: box {box} touches the frame's edge")
    if kind == "extra" and figures.get("face_visible", 1.0) < MIN_FACE_VISIBLE:
        found.append(f"{name}: face {figures['face_visible']:.0%} visible, needs >= {MIN_FACE_VISIBLE:.0%}")
    return found


def check_geometry(spec: ScenarioSpec, assets: SceneAssets) -> tuple[list[dict[str, Any]], list[str]]:
    """Measure every normal-camera segment at its start, middle and end; return the figures and the problems."""
    figures: list[dict[str, Any]] = []
    problems: list[str] = []
    for i, seg in enumerate(spec.segments):
        view = view_of(seg)
        if view.camera != "normal":
            figures.append({})
            continue
        length = seg.end - seg.start
        samples = [measure_view(assets, view, t) for t in (0.0, length / 2, max(0.0, length - 1.0 / spec.fps))]
        worst: dict[str, dict[str, Any]] = {}
        for sample in samples:
            for name, f in sample.items():
                keep = worst.get(name)
                if keep is None or f["visible"] < keep["visible"]:
                    worst[name] = f
        figures.append(worst)
        problems += [f"segments[{i}] {p}" for name, f in worst.items() for p in problems_of(name, f)]
    return figures, problems


def check_audio(spec: ScenarioSpec, samples: np.ndarray) -> tuple[list[dict[str, Any]], list[str]]:
    """Levels of each sound and of the room tone, measured on the mixed track."""
    rate = audio.RATE
    figures: list[dict[str, Any]] = []
    problems: list[str] = []
    quiet = np.ones(samples.size, bool)
    for i, sound in enumerate(spec.sounds):
        a, b = round(sound.start * rate), round(sound.end * rate)
        quiet[a:b] = False
        level = round(audio.rms_dbfs(samples[a:b]), 1)
        figures.append({"type": sound.type, "start": sound.start, "end": sound.end, "rms_dbfs": level})
        if sound.type == "bangs" and level < LOUD_DBFS:
            problems.append(f"sounds[{i}] bangs: RMS {level} dBFS, loud needs >= {LOUD_DBFS} dBFS")
        if sound.type == "speech" and abs(level - sound.level_dbfs) > SPEECH_TOLERANCE_DB:
            problems.append(f"sounds[{i}] speech: RMS {level} dBFS, defined as {sound.level_dbfs} dBFS")
    rest = round(audio.rms_dbfs(samples[quiet]), 1) if quiet.any() else None
    if rest is not None and rest > QUIET_DBFS:
        problems.append(f"room tone: RMS {rest} dBFS, needs <= {QUIET_DBFS} dBFS")
    return [*figures, {"type": "room_tone", "rms_dbfs": rest}], problems
