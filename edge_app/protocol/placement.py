"""The placement verdict as it travels: the unit's heartbeat carries it in a few bytes (``placement``: ``ok``,
or the failed checks joined by commas, most important first), and the bridge turns it back into the same
plain-language guidance the unit's page shows, for the exam PC (docs/protocol.md). Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping

GUIDANCE = {  # check -> the sentence for whoever aims the camera, most important first
    "candidate": "Nobody is seen in the seat: sit in your exam position and aim the camera at yourself.",
    "face": "Your face is not visible: raise or turn the camera so your head is in view.",
    "hands": "Both hands must be in view: move the camera back or tilt it down.",
    "desk": "The desk in front of you must be in view: tilt the camera down a little.",
    "screen": "The exam PC's screen must be in view: turn the camera so it sees the screen beside you.",
    "light": "The picture is too dark: switch on a light or move the camera away from a window.",
}
_CHECK = "|".join(GUIDANCE)
PLACEMENT = re.compile(rf"^(ok|({_CHECK})(,({_CHECK}))*)$")
MAX_PLACEMENT = 60  # characters: every check failed, with its commas


def placement_code(checks: Mapping[str, bool]) -> str:
    """``ok`` when every check passed, else the failed checks in the order of :data:`GUIDANCE`."""
    failed = [name for name in GUIDANCE if not checks.get(name, True)]
    return ",".join(failed) if failed else "ok"


def placement_verdict(code: object) -> dict[str, object] | None:
    """What a heartbeat's ``placement`` says: usable, the failed checks and their guidance; None if not one."""
    if not isinstance(code, str) or len(code) > MAX_PLACEMENT or not PLACEMENT.fullmatch(code):
        return None
    failed = [] if code == "ok" else code.split(",")
    return {"usable": not failed, "failed": failed, "guidance": [GUIDANCE[name] for name in failed]}
