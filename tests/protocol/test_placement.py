"""The placement verdict in a heartbeat: a few bytes there, the same guidance as the unit's page back out."""

from __future__ import annotations

import pytest

from edge_app.protocol import ProtocolError
from edge_app.protocol.commands import decode_stats, encode_stats
from edge_app.protocol.placement import GUIDANCE, MAX_PLACEMENT, placement_code, placement_verdict

EVERY = dict.fromkeys(GUIDANCE, True)


@pytest.mark.parametrize(("failed", "code"), [
    ((), "ok"),
    (("hands",), "hands"),
    (("screen", "candidate"), "candidate,screen"),  # most important first, whatever the order of the checks
    (tuple(GUIDANCE), ",".join(GUIDANCE)),
])
def test_a_verdict_travels_as_its_failed_checks_and_comes_back_with_its_guidance(failed: tuple[str, ...],
                                                                                  code: str) -> None:
    checks = {**EVERY, **dict.fromkeys(failed, False)}
    assert placement_code(checks) == code and len(code) <= MAX_PLACEMENT
    verdict = placement_verdict(code)
    assert verdict == {"usable": not failed, "failed": [k for k in GUIDANCE if k in failed],
                       "guidance": [GUIDANCE[k] for k in GUIDANCE if k in failed]}


@pytest.mark.parametrize("code", ["", "OK", "ok,hands", "hands,", "sideways", "hands screen", "hands\n", 3, None,
                                  ["hands"], "hands," * 20])
def test_anything_else_is_no_verdict_and_no_heartbeat(code: object) -> None:
    assert placement_verdict(code) is None
    if isinstance(code, str) and code:
        with pytest.raises(ProtocolError):
            encode_stats({"d": "unit-1", "placement": code}, 1)


def test_a_heartbeat_carries_it() -> None:
    assert decode_stats(encode_stats({"d": "unit-1", "placement": "face,light"}, 1))["placement"] == "face,light"
