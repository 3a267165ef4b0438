"""``--check``: run the int8 models on a few rendered frames of every segment and verify the intended signal.

Per segment (frames at 1/4, 1/2 and 3/4 of it): people the detector sees (score >= 0.35), the largest
face's yaw/pitch against the calibration baseline, identity similarity to the enrolled photo, the best
``cell phone`` score in a crop of 3x the phone around it, the best ``book`` score in the full frame and
in a crop around the book, and the frame's brightness. Per sound: its RMS level. Prints one table and
returns whether every expectation held.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge_app.vision.detector import COCO_LABELS
from edge_app.vision.identity import MATCH_THRESHOLD, IdentityVerifier
from edge_app.vision.models import VisionModels, load_models
from tools.scenarios import audio, sources
from tools.scenarios.catalog import PEOPLE, POSES, PROPS, BookProp, PhoneProp

PERSON_SCORE = 0.35
PHONE_CROP_SCORE = 0.25
BOOK_SCORE, BOOK_CROP_SCORE = 0.35, 0.25
GAZE_PITCH, GAZE_YAW = 20.0, 30.0  # a gaze_away pose differs from the baseline by at least this
STEADY_PITCH, STEADY_YAW = 12.0, 15.0  # a looking-ahead pose stays within this of the baseline
DARK = 40.0  # mean grey level of a covered lens
LOUD_DBFS, SPEECH_DBFS, QUIET_DBFS = -10.0, (-35.0, -15.0), -50.0
PHONE, BOOK = COCO_LABELS.index("cell phone"), COCO_LABELS.index("book")


@dataclass
class Measure:
    t: float
    people: int
    face: tuple[float, float] | None = None  # yaw, pitch of the largest face
    identity: float | None = None
    phone: tuple[float, float] | None = None  # full frame, crop
    book: tuple[float, float] | None = None
    brightness: float = 0.0
    problems: list[str] = field(default_factory=list)


def read_frames(video: Path, indices: list[int]) -> dict[int, np.ndarray]:
    capture = cv2.VideoCapture(str(video))
    out = {}
    for index in indices:
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, bgr = capture.read()
        if ok:
            out[index] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    capture.release()
    return out


def best(models: VisionModels, frame: np.ndarray, label: int, region: tuple[float, ...] | None) -> float:
    _, scores = models.detector.detect_raw(frame, region=region, min_score=0.05)  # type: ignore[arg-type]
    return float(scores[:, label].max()) if len(scores) else 0.0


def square(cx: float, cy: float, side: float, size: tuple[int, int] = (640, 480)) -> tuple[float, float, float, float]:
    """A square crop of ``side`` around (cx, cy), moved inside the frame (so it stays square)."""
    x1 = min(max(cx - side / 2, 0.0), size[0] - side)
    y1 = min(max(cy - side / 2, 0.0), size[1] - side)
    return x1, y1, x1 + side, y1 + side


def measure(models: VisionModels, verifier: IdentityVerifier, frame: np.ndarray, t: float,
            segment: dict[str, Any]) -> Measure:
    people = [d for d in models.detector.detect(frame) if d.label == "person" and d.score >= PERSON_SCORE]
    result = Measure(t=t, people=len(people), brightness=float(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).mean()))
    found = verifier.describe(frame)
    if found is not None:
        face, embedding = found
        result.face = (float(face.yaw or 0.0), float(face.pitch or 0.0))
        result.identity = float(np.dot(embedding, verifier.template)) if verifier.template is not None else None
    for name in segment["props"]:
        prop = PROPS[name]
        if isinstance(prop, PhoneProp):
            crop = square(prop.at[0], prop.at[1], 3 * prop.height)
            result.phone = (best(models, frame, PHONE, None), best(models, frame, PHONE, crop))
        elif isinstance(prop, BookProp):
            crop = square(prop.at[0], prop.at[1] - prop.height / 2, 2.5 * prop.height)
            result.book = (best(models, frame, BOOK, None), best(models, frame, BOOK, crop))
    return result


def expect(m: Measure, segment: dict[str, Any], enrolled: str, baseline: tuple[float, float] | None) -> None:
    """Record in ``m.problems`` every intended signal that is missing."""
    if segment["camera"] == "covered":
        if m.brightness > DARK or m.people:
            m.problems.append(f"covered lens: brightness {m.brightness:.0f} (want <= {DARK:.0f}), people {m.people}")
        return
    if segment["camera"] == "knocked":
        if m.people:
            m.problems.append(f"knocked camera still sees {m.people} people")
        return
    candidate = segment["candidate"]
    want_people = (1 if candidate else 0) + len(segment["extras"])
    if m.people != want_people:
        m.problems.append(f"people {m.people}, want {want_people}")
    if candidate is None:
        if m.face is not None:
            m.problems.append("a face in the empty scene")
        return
    pose = POSES[candidate]
    if m.face is None or m.identity is None:
        m.problems.append("no face found")
        return
    same = pose.person == PEOPLE[enrolled]
    if same != (m.identity >= MATCH_THRESHOLD):
        m.problems.append(f"identity {m.identity:.2f} but {pose.person} {'is' if same else 'is not'} enrolled")
    if baseline is not None and pose.person == PEOPLE[enrolled]:
        dyaw, dpitch = abs(m.face[0] - baseline[0]), abs(m.face[1] - baseline[1])
        away = dpitch >= GAZE_PITCH or dyaw >= GAZE_YAW
        steady = dpitch <= STEADY_PITCH and dyaw <= STEADY_YAW
        if pose.gaze != "ahead" and not away:
            m.problems.append(f"gaze: yaw/pitch differ {dyaw:.0f}/{dpitch:.0f} deg from baseline, want >= "
                              f"{GAZE_YAW:.0f}/{GAZE_PITCH:.0f}")
        if pose.gaze == "ahead" and not steady:
            m.problems.append(f"head moved {dyaw:.0f}/{dpitch:.0f} deg (yaw/pitch) from baseline while looking ahead")
    if m.phone is not None and m.phone[1] < PHONE_CROP_SCORE:
        m.problems.append(f"cell phone {m.phone[1]:.2f} in the crop, want >= {PHONE_CROP_SCORE}")
    if m.book is not None and m.book[0] < BOOK_SCORE and m.book[1] < BOOK_CROP_SCORE:
        m.problems.append(f"book {m.book[0]:.2f} full frame / {m.book[1]:.2f} crop, want >= {BOOK_SCORE} / "
                          f">= {BOOK_CROP_SCORE}")


def check_audio(folder: Path, truth: dict[str, Any]) -> list[str]:
    samples, rate = audio.read_wav(folder / "audio.wav")
    lines, quiet = [], np.ones(samples.size, bool)
    for sound in truth["sounds"]:
        a, b = round(sound["start"] * rate), round(sound["end"] * rate)
        quiet[a:b] = False
        level = audio.rms_dbfs(samples[a:b])
        step = rate // 10
        windows = np.array([audio.rms_dbfs(samples[i : i + step]) for i in range(a, b - step + 1, step)])
        loud = float((windows >= LOUD_DBFS).mean())
        if sound["type"] == "bangs":
            ok = level >= LOUD_DBFS and loud >= 0.9
        else:
            ok = SPEECH_DBFS[0] <= level <= SPEECH_DBFS[1] and loud == 0.0
        lines.append(f"  sound {sound['type']:6s} {sound['start']:5.1f}-{sound['end']:5.1f}s  RMS {level:6.1f} dBFS, "
                     f"100 ms windows {windows.min():.1f}..{windows.max():.1f}, {loud:.0%} >= {LOUD_DBFS:g} dBFS  "
                     f"{'ok' if ok else 'FAIL'}")
    rest = audio.rms_dbfs(samples[quiet])
    lines.append(f"  quiet parts RMS {rest:.1f} dBFS  {'ok' if rest <= QUIET_DBFS else 'FAIL'}")
    return lines


def check_scenario(models: VisionModels, folder: Path, frames_per_segment: int = 3) -> tuple[bool, list[str]]:
    truth = json.loads((folder / "truth.json").read_text())
    verifier = IdentityVerifier(models.face_detector, models.face_landmarks, models.face_embedding)
    verifier.enroll(sources.photo_rgb(truth["enrolled"]))
    fps, segments = truth["fps"], truth["segments"]
    plan = []
    for s, seg in enumerate(segments):
        times = [seg["start"] + (seg["end"] - seg["start"]) * q / (frames_per_segment + 1)
                 for q in range(1, frames_per_segment + 1)]
        calib_end = min(seg["end"], truth["calibration_seconds"])
        if seg["start"] < calib_end and all(t >= calib_end for t in times):  # the baseline needs calibration frames
            times = [seg["start"] + (calib_end - seg["start"]) * q / 3 for q in (1, 2)] + times
        plan += [(s, round(t * fps)) for t in times]
    frames = read_frames(folder / "video.avi", sorted({k for _, k in plan}))
    measures = [(s, measure(models, verifier, frames[k], k / fps, segments[s])) for s, k in plan if k in frames]
    calib = [m.face for s, m in measures if m.face and m.t < truth["calibration_seconds"]]
    baseline = (float(np.median([f[0] for f in calib])), float(np.median([f[1] for f in calib]))) if calib else None
    lines = [f"{truth['name']}: baseline yaw/pitch {baseline[0]:.1f}/{baseline[1]:.1f}" if baseline
             else f"{truth['name']}: no face during calibration"]
    ok = baseline is not None and len(measures) == len(plan)
    for s, m in measures:
        seg = segments[s]
        expect(m, seg, truth["enrolled"], baseline)
        ok &= not m.problems
        what = seg["camera"] if seg["camera"] != "normal" else (seg["candidate"] or "empty seat")
        what += "".join(f" +{x}" for x in seg["extras"] + seg["props"])
        face = f"{m.face[0]:5.1f}/{m.face[1]:5.1f}" if m.face else "     -     "
        ident = f"{m.identity:4.2f}" if m.identity is not None else "  - "
        obj = ""
        if m.phone:
            obj += f" phone {m.phone[0]:.2f}/{m.phone[1]:.2f}"
        if m.book:
            obj += f" book {m.book[0]:.2f}/{m.book[1]:.2f}"
        lines.append(f"  {m.t:5.1f}s {what:34s} people {m.people} yaw/pitch {face} id {ident} "
                     f"grey {m.brightness:5.1f}{obj}  {'ok' if not m.problems else 'FAIL: ' + '; '.join(m.problems)}")
    audio_lines = check_audio(folder, truth)
    ok &= not any(line.endswith("FAIL") for line in audio_lines)
    return ok, lines + audio_lines


def check_all(folders: list[Path], frames_per_segment: int = 3) -> bool:
    """Check rendered scenario folders with the int8 models; print the table; True when all hold."""
    models = load_models(quant="int8")
    all_ok = True
    print("t = time in the video; yaw/pitch in degrees; id = cosine to the enrolled photo; phone/book = best "
          "score full frame/crop; grey = mean brightness")
    for folder in folders:
        ok, lines = check_scenario(models, folder, frames_per_segment)
        all_ok &= ok
        print("\n".join(lines))
    print("check: " + ("all signals present" if all_ok else "SOME SIGNALS MISSING"))
    return all_ok
