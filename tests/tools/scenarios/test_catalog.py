"""The catalog only names media that exist: poses' video frames, people's photos and boxes, enrolable photos."""

from __future__ import annotations

from tools.fixtures import PHOTOS
from tools.scenarios import sources
from tools.scenarios.catalog import (
    EXTRAS,
    PEOPLE,
    POSES,
    PROPS,
    VIDEO,
    BookProp,
    DeskObjectProp,
    PastedPerson,
    StudioPose,
)


def test_every_name_points_at_real_media() -> None:
    assert set(PEOPLE) <= set(PHOTOS)
    frames = [i for p in POSES.values() if isinstance(p, StudioPose) for i in p.frames]
    assert min(frames) >= 0 and max(frames) < 4998, f"{VIDEO} has 4998 frames"
    for person in [*EXTRAS.values(), *(p for p in POSES.values() if isinstance(p, PastedPerson))]:
        h, w = sources.photo_rgb(person.photo).shape[:2]
        x1, y1, x2, y2 = person.box
        fx1, fy1, fx2, fy2 = person.face
        assert 0 <= x1 <= fx1 < fx2 <= x2 <= w and 0 <= y1 <= fy1 < fy2 <= y2 <= h, person
    for prop in PROPS.values():
        if isinstance(prop, BookProp | DeskObjectProp):
            assert prop.photo in PHOTOS or prop.photo in sources.SCENE_PHOTOS
            assert sources.photo_rgb(prop.photo).ndim == 3
        if isinstance(prop, DeskObjectProp):
            h, w = sources.photo_rgb(prop.photo).shape[:2]
            cx, cy, ax, ay = prop.ellipse
            assert ax <= cx <= w - ax and ay <= cy <= h - ay, prop


def test_poses_say_who_and_where_they_look() -> None:
    assert {p.person for p in POSES.values()} == {"franck", "biden"}
    assert [name for name, p in POSES.items() if p.gaze != "ahead"] == ["franck_looking_down"]
    assert [name for name, p in POSES.items() if p.talking] == ["franck_talking"]
    assert {PEOPLE[name] for name in PEOPLE} >= {"franck", "obama", "biden"}
