"""What every model sees in one image: people with pose, objects, faces with head pose, identity, and what
the unit would conclude about a phone (the full pass, the hand/desk pass and the phone rule's verdict).

Used by ``python -m edge_app detect`` (and so by the demo) to check the models on any photo.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from edge_app.crops import hand_and_desk_regions
from edge_app.rules.presets import STANDARD
from edge_app.track import box_iou
from edge_app.vision.models import VisionModels

POSE_PEOPLE = 4  # pose is estimated for the largest people only (the candidate is one of them)
PHONE = "cell phone"
KEYPOINT_MIN_SCORE = 0.3


def _box(box: tuple[float, float, float, float]) -> list[float]:
    return [round(float(v), 1) for v in box]


def describe(models: VisionModels, image: np.ndarray, enrolled: np.ndarray | None = None) -> dict[str, Any]:
    """Run every model on an RGB image; ``enrolled`` is an identity template to compare faces with."""
    timings: dict[str, float] = {}

    def timed(stage: str, started: float) -> None:
        timings[stage] = round(timings.get(stage, 0.0) + (time.perf_counter() - started) * 1000, 1)

    started = time.perf_counter()
    detections = models.detector.detect(image)
    timed("detector", started)
    people = sorted((d for d in detections if d.label == "person"), key=lambda d: -_area(d.box))
    result_people = []
    candidate_keypoints: np.ndarray | None = None
    for rank, person in enumerate(people):
        entry: dict[str, Any] = {"score": round(person.score, 3), "box": _box(person.box)}
        if rank < POSE_PEOPLE:
            started = time.perf_counter()
            pose = models.pose.estimate(image, box=person.box)
            timed("pose", started)
            if rank == 0:
                candidate_keypoints = pose.as_array()
            entry["pose"] = {
                k.name: [round(k.x, 1), round(k.y, 1), round(k.score, 2)]
                for k in pose.keypoints
                if k.score >= KEYPOINT_MIN_SCORE
            }
        result_people.append(entry)
    objects = [
        {"label": d.label, "score": round(d.score, 3), "box": _box(d.box)} for d in detections if d.label != "person"
    ]
    started = time.perf_counter()
    phone = phone_verdict(models, image, detections, people[0].box if people else None, candidate_keypoints)
    timed("hand_desk_crops", started)
    started = time.perf_counter()
    faces = models.face_detector.detect(image)
    timed("face_detector", started)
    result_faces = []
    for face in faces:
        started = time.perf_counter()
        face = models.face_landmarks.landmarks(image, face)
        timed("face_landmarks", started)
        entry = {
            "score": round(face.score, 3),
            "box": _box(face.box),
            "yaw": _round(face.yaw),
            "pitch": _round(face.pitch),
            "roll": _round(face.roll),
            "mouth_open": _round(face.mouth_open, 3),
        }
        if enrolled is not None:
            started = time.perf_counter()
            embedding = models.face_embedding.embed(image, face)
            timed("face_embedding", started)
            similarity = float(np.dot(embedding, enrolled))
            entry["identity"] = {
                "similarity": round(similarity, 3),
                "match": similarity >= models.face_embedding.threshold,
            }
        result_faces.append(entry)
    return {
        "size": [int(image.shape[1]), int(image.shape[0])],
        "people": result_people,
        "objects": objects,
        "phone": phone,
        "faces": result_faces,
        "timings_ms": timings,
    }


def phone_verdict(models: VisionModels, image: np.ndarray, detections: list[Any],
                  candidate: tuple[float, float, float, float] | None, keypoints: np.ndarray | None,
                  min_score: float = float(STANDARD["phone"]["min_score"])) -> dict[str, Any]:
    """The phone as the unit judges one frame: the full pass, the second pass on crops around the largest
    person's wrists and desk (as on the device), and whether the phone rule's threshold is met."""
    full = [{"score": round(d.score, 3), "box": _box(d.box)} for d in detections if d.label == PHONE]
    regions: list[tuple[float, float, float, float]] = []
    crops: list[dict[str, Any]] = []
    if candidate is not None:
        height, width = image.shape[:2]
        regions = hand_and_desk_regions(candidate, keypoints, (width, height))
        for region in regions:
            for d in models.detector.detect(image, region):
                if d.label == PHONE and all(box_iou(d.box, tuple(f["box"])) < 0.5 for f in full):
                    crops.append({"score": round(d.score, 3), "box": _box(d.box)})
    seen = [("full frame", f) for f in full] + [("hand/desk crop", c) for c in crops]
    best = max(seen, key=lambda s: s[1]["score"], default=None)
    if best is not None and best[1]["score"] >= min_score:
        verdict = f"phone: {best[1]['score']:.2f} >= {min_score} in the {best[0]}"
    elif best is not None:
        verdict = f"no phone: best cell phone {best[1]['score']:.2f} ({best[0]}) is below {min_score}"
    else:
        verdict = "no phone: no cell phone box in either pass" + ("" if candidate else " (no person: no crops)")
    return {"full_pass": full, "crop_regions": [_box(r) for r in regions], "crop_pass": crops,
            "min_score": min_score, "seen": bool(best and best[1]["score"] >= min_score), "verdict": verdict,
            "note": "one frame; the rule raises when this holds in enough frames over its window"}


def _area(box: tuple[float, float, float, float]) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)


def format_text(name: str, info: dict[str, Any]) -> str:
    """A few plain lines per image for people reading a terminal."""
    w, h = info["size"]
    lines = [f"{name} ({w}x{h})", f"  people: {len(info['people'])}"]
    for person in info["people"]:
        pose = person.get("pose")
        pose_text = f", pose {len(pose)}/17 keypoints" if pose is not None else ""
        lines.append(f"    person {person['score']:.2f} at {person['box']}{pose_text}")
    objects = ", ".join(f"{o['label']} {o['score']:.2f}" for o in info["objects"]) or "none"
    lines.append(f"  objects: {objects}")
    phone = info["phone"]
    lines.append(f"  phone rule: {phone['verdict']} (full pass {len(phone['full_pass'])}, "
                 f"hand/desk pass {len(phone['crop_pass'])} in {len(phone['crop_regions'])} crops)")
    lines.append(f"  faces: {len(info['faces'])}")
    for face in info["faces"]:
        text = (
            f"    face {face['score']:.2f} at {face['box']}: yaw {face['yaw']}°, pitch {face['pitch']}°, "
            f"roll {face['roll']}°, mouth open {face['mouth_open']}"
        )
        if "identity" in face:
            verdict = "match" if face["identity"]["match"] else "NO MATCH"
            text += f", identity {face['identity']['similarity']:.2f} ({verdict})"
        lines.append(text)
    lines.append("  ms: " + ", ".join(f"{k} {v}" for k, v in info["timings_ms"].items()))
    return "\n".join(lines)
