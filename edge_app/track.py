"""Person tracks across frames, and which track is the candidate.

Greedy IoU association (an exam room holds one to a few people, so the optimal assignment is not worth
its cost). A track is confirmed after ``confirm_hits`` detections and dropped after ``max_age`` seconds
unseen. The candidate is the track chosen at calibration, kept while it lives; when it is lost, the
confirmed track that overlaps the seat zone most takes its place.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_app.rules.observation import Box


def box_iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def overlap(box: Box, zone: Box) -> float:
    """Share of ``box`` inside ``zone``."""
    ix = max(0.0, min(box[2], zone[2]) - max(box[0], zone[0]))
    iy = max(0.0, min(box[3], zone[3]) - max(box[1], zone[1]))
    area = (box[2] - box[0]) * (box[3] - box[1])
    return ix * iy / area if area > 0 else 0.0


@dataclass
class Track:
    id: int
    box: Box
    score: float
    hits: int
    last_seen: float
    confirmed: bool = False


class PersonTracker:
    def __init__(self, iou_match: float = 0.25, confirm_hits: int = 2, max_age: float = 1.5) -> None:
        self.iou_match, self.confirm_hits, self.max_age = iou_match, confirm_hits, max_age
        self.tracks: list[Track] = []
        self.candidate_id: int | None = None
        self._next_id = 1

    def update(self, boxes: list[tuple[Box, float]], t: float) -> list[Track]:
        """Associate this frame's person boxes; return the confirmed tracks seen in this frame."""
        pairs = sorted(((box_iou(track.box, box), ti, bi) for ti, track in enumerate(self.tracks)
                        for bi, (box, _) in enumerate(boxes)), reverse=True)
        used_tracks: set[int] = set()
        used_boxes: set[int] = set()
        seen: list[Track] = []
        for score, ti, bi in pairs:
            if score < self.iou_match or ti in used_tracks or bi in used_boxes:
                continue
            used_tracks.add(ti)
            used_boxes.add(bi)
            track = self.tracks[ti]
            track.box, track.score = boxes[bi]
            track.hits += 1
            track.last_seen = t
            track.confirmed = track.confirmed or track.hits >= self.confirm_hits
            seen.append(track)
        for bi, (box, score) in enumerate(boxes):
            if bi not in used_boxes:
                track = Track(self._next_id, box, score, 1, t, confirmed=self.confirm_hits <= 1)
                self._next_id += 1
                self.tracks.append(track)
                seen.append(track)
        self.tracks = [tr for tr in self.tracks if t - tr.last_seen <= self.max_age]
        if self.candidate_id is not None and all(tr.id != self.candidate_id for tr in self.tracks):
            self.candidate_id = None
        return [tr for tr in seen if tr.confirmed]

    def candidate(self, visible: list[Track], zone: Box | None, min_overlap: float = 0.3) -> Track | None:
        """The candidate among the visible confirmed tracks (see the module docstring)."""
        for track in visible:
            if track.id == self.candidate_id:
                return track
        if zone is None:
            best = max(visible, key=lambda tr: (tr.box[2] - tr.box[0]) * (tr.box[3] - tr.box[1]), default=None)
        else:
            ranked = sorted(visible, key=lambda tr: overlap(tr.box, zone), reverse=True)
            best = ranked[0] if ranked and overlap(ranked[0].box, zone) >= min_overlap else None
        if best is not None:
            self.candidate_id = best.id
        return best
