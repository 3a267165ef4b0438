"""Person tracks and the candidate."""

from __future__ import annotations

import pytest

from edge_app.track import PersonTracker, box_iou, overlap


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [((0, 0, 10, 10), (0, 0, 10, 10), 1.0), ((0, 0, 10, 10), (5, 0, 15, 10), 1 / 3),
     ((0, 0, 10, 10), (20, 20, 30, 30), 0.0), ((0, 0, 0, 0), (0, 0, 0, 0), 0.0)],
)
def test_box_iou(a: tuple, b: tuple, expected: float) -> None:
    assert box_iou(a, b) == pytest.approx(expected)


def test_overlap_is_the_share_inside() -> None:
    assert overlap((0, 0, 10, 10), (5, 0, 100, 100)) == pytest.approx(0.5)


def test_a_track_is_confirmed_on_its_second_hit_and_keeps_its_id() -> None:
    tracker = PersonTracker()
    assert tracker.update([((100, 100, 200, 300), 0.9)], 0.0) == []
    seen = tracker.update([((104, 102, 204, 302), 0.9)], 0.2)
    assert [t.id for t in seen] == [1]
    assert tracker.update([((110, 104, 210, 304), 0.8)], 0.4)[0].id == 1


def test_two_people_keep_apart_and_a_lost_track_expires() -> None:
    tracker = PersonTracker(max_age=1.0)
    for i in range(3):
        seen = tracker.update([((100, 100, 200, 300), 0.9), ((400, 100, 500, 300), 0.8)], i * 0.2)
    assert sorted(t.id for t in seen) == [1, 2]
    tracker.update([((100, 100, 200, 300), 0.9)], 0.6)
    assert len(tracker.tracks) == 2  # unseen for 0.2 s: kept
    tracker.update([((100, 100, 200, 300), 0.9)], 2.0)
    assert [t.id for t in tracker.tracks] == [1]


def test_the_candidate_is_the_track_in_the_zone_and_stays_while_it_lives() -> None:
    tracker = PersonTracker()
    zone = (350.0, 50.0, 550.0, 400.0)
    for i in range(2):
        seen = tracker.update([((100, 100, 200, 300), 0.9), ((400, 100, 500, 300), 0.8)], i * 0.2)
    assert tracker.candidate(seen, zone).id == 2
    # the candidate walks off (still tracked): still the candidate, and the other person is not promoted
    for i, x in enumerate(range(380, 200, -40)):
        seen = tracker.update([((100, 100, 200, 300), 0.9), ((x, 100, x + 100, 300), 0.8)], 0.4 + i * 0.2)
        assert tracker.candidate(seen, zone).id == 2
    # nobody in the zone after the candidate's track died: no candidate
    seen = tracker.update([((100, 100, 200, 300), 0.9)], 5.0)
    assert tracker.candidate(seen, zone) is None


def test_without_a_zone_the_largest_person_is_the_candidate() -> None:
    tracker = PersonTracker(confirm_hits=1)
    seen = tracker.update([((0, 0, 50, 50), 0.9), ((100, 100, 300, 400), 0.5)], 0.0)
    assert tracker.candidate(seen, None).box == (100, 100, 300, 400)
