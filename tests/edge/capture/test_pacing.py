"""Pacer on an injected clock: media time held to the wall clock from the first start()."""

from __future__ import annotations

from edge_app.capture.pacing import Pacer
from tests.edge.capture.media import FakeClock


def test_waits_until_media_time_and_never_for_the_past() -> None:
    clock = FakeClock()
    pacer = Pacer(clock, clock.sleep)
    pacer.wait_until(0.5)
    assert clock.sleeps == [0.5]
    clock.now += 1.0  # the caller was busy: 1.5 s of media time have passed
    pacer.wait_until(1.2)
    assert clock.sleeps == [0.5] and pacer.elapsed() == 1.5


def test_first_start_fixes_the_origin() -> None:
    clock = FakeClock()
    pacer = Pacer(clock, clock.sleep)
    pacer.start()
    clock.now += 2.0
    pacer.start()  # a paired stream starting later shares the same origin
    assert pacer.elapsed() == 2.0
