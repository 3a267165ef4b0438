"""Compare two self-test reports (x86 reference, aarch64 image): same people and objects per photo.

A detection the unit would report (score at or above its class threshold) on one side must have a partner
on the other side: same class, IoU >= 0.5, score within ``SCORE_TOLERANCE``. The reports hold detections
down to half the threshold, so a detection whose score moved across the threshold still finds its partner
and counts as a flip (allowed only within the tolerance of the threshold), not as a loss.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IOU_MIN = 0.5
SCORE_TOLERANCE = 0.05


def iou(a: list[float], b: list[float]) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class PhotoParity:
    photo: str
    reference: int = 0  # reported detections on the reference side
    candidate: int = 0
    matched: int = 0  # reported on both sides and paired
    flips: list[str] = field(default_factory=list)  # reported on one side only, partner below threshold
    lost: list[str] = field(default_factory=list)  # no partner at all, or the score moved too far
    max_score_diff: float = 0.0
    min_iou: float = 1.0

    @property
    def same(self) -> bool:
        """The same people and objects reported on both sides."""
        return not self.flips and not self.lost and self.reference == self.candidate == self.matched

    @property
    def ok(self) -> bool:
        return not self.lost


def _label(d: dict[str, Any]) -> str:
    return f"{d.get('label', 'face')} {d['score']:.2f}"


def _reported(d: dict[str, Any]) -> bool:
    return bool(d["score"] >= d["threshold"])


def _partner(d: dict[str, Any], others: list[dict[str, Any]], used: set[int]) -> tuple[int, float] | None:
    best: tuple[int, float] | None = None
    for i, o in enumerate(others):
        if i in used or o.get("label") != d.get("label"):
            continue
        overlap = iou(d["box"], o["box"])
        if overlap >= IOU_MIN and (best is None or overlap > best[1]):
            best = (i, overlap)
    return best


def compare_lists(photo: str, ref: list[dict[str, Any]], cand: list[dict[str, Any]]) -> PhotoParity:
    """Pair the two sides' detections of one photo (best-scoring first) and classify every reported one."""
    parity = PhotoParity(photo, sum(map(_reported, ref)), sum(map(_reported, cand)))
    used: set[int] = set()
    paired_cand: set[int] = set()
    for d in sorted(ref, key=lambda x: -x["score"]):
        hit = _partner(d, cand, used)
        if hit is None:
            if _reported(d):
                parity.lost.append(f"{_label(d)} missing on candidate")
            continue
        used.add(hit[0])
        o = cand[hit[0]]
        diff = abs(d["score"] - o["score"])
        if not (_reported(d) or _reported(o)):
            continue
        paired_cand.add(hit[0])
        parity.max_score_diff = max(parity.max_score_diff, round(diff, 4))
        parity.min_iou = min(parity.min_iou, round(hit[1], 3))
        if diff > SCORE_TOLERANCE:
            parity.lost.append(f"{_label(d)} -> {_label(o)}: score moved by {diff:.3f}")
        elif _reported(d) and _reported(o):
            parity.matched += 1
        else:
            parity.flips.append(f"{_label(d)} -> {_label(o)} across threshold {d['threshold']}")
    for i, o in enumerate(cand):
        if i not in paired_cand and i not in used and _reported(o):
            parity.lost.append(f"{_label(o)} only on candidate")
    return parity


def compare(reference: dict[str, Any], candidate: dict[str, Any]) -> dict[str, Any]:
    """Per-photo parity of detections (people and objects) and faces, plus the candidate's import checks."""
    rows = []
    for photo, ref in sorted(reference["photos"].items()):
        cand = candidate["photos"].get(photo)
        if cand is None:
            rows.append({"photo": photo, "ok": False, "error": "missing on candidate"})
            continue
        objects = compare_lists(photo, ref["detections"], cand["detections"])
        faces = compare_lists(photo, ref["faces"], cand["faces"])
        rows.append({
            "photo": photo,
            "people": f"{_count(ref['detections'], 'person')}/{_count(cand['detections'], 'person')}",
            "objects": f"{objects.reference}/{objects.candidate}",
            "faces": f"{faces.reference}/{faces.candidate}",
            "same": objects.same and faces.same,
            "ok": objects.ok and faces.ok,
            "max_score_diff": max(objects.max_score_diff, faces.max_score_diff),
            "min_iou": min(objects.min_iou, faces.min_iou),
            "flips": objects.flips + faces.flips,
            "lost": objects.lost + faces.lost,
            "ms": f"{ref['ms']:.0f}/{cand['ms']:.0f}",
        })
    bad_imports = {k: v.get("error", "version") for k, v in candidate["imports"].items() if not v["ok"]}
    bad_models = [k for k, v in candidate["files"].items() if not v["sha256_ok"]]
    return {
        "reference": reference["machine"], "candidate": candidate["machine"],
        "runtime": candidate["runtime"], "score_tolerance": SCORE_TOLERANCE, "iou_min": IOU_MIN,
        "photos": rows, "bad_imports": bad_imports, "bad_models": bad_models,
        "needs_pi_os": {k: v["needs_pi_os"] for k, v in candidate["imports"].items() if "needs_pi_os" in v},
        "passed": all(r["ok"] for r in rows) and not bad_imports and not bad_models,
    }


def _count(detections: list[dict[str, Any]], label: str) -> int:
    return sum(1 for d in detections if d["label"] == label and _reported(d))


def table(result: dict[str, Any]) -> str:
    """Markdown table of the parity (reference/candidate counts)."""
    lines = [f"| photo | people {result['reference']}/{result['candidate']} | all objects | faces | same | "
             "max score diff | min IoU | ms |", "|---|---|---|---|---|---|---|---|"]
    for r in result["photos"]:
        if "error" in r:
            lines.append(f"| {r['photo']} | {r['error']} | | | no | | | |")
            continue
        lines.append(f"| {r['photo']} | {r['people']} | {r['objects']} | {r['faces']} | "
                     f"{'yes' if r['same'] else 'flip' if r['ok'] else 'NO'} | {r['max_score_diff']:.3f} | "
                     f"{r['min_iou']:.2f} | {r['ms']} |")
    return "\n".join(lines)


def load(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(path.read_text())
    return result
