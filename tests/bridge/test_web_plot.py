"""The session's timeline plot (inline SVG drawn on the server) from constructed timelines: bars as long as the
alerts, one row per kind, PC ticks on their own row, offline stretches shaded, one clock."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from cloud_bridge.pc_events import PcEventView
from cloud_bridge.timeline import AlertItem, SessionTimeline
from cloud_bridge.web.plot import LEFT, RIGHT, WIDTH, clock, timeline_svg

T = 1_800_000_000.0
SVG = "{http://www.w3.org/2000/svg}"


def session(**fields: object) -> SessionTimeline:
    timeline = SessionTimeline("s" * 32, "exam-1", "cand-1", "unit-1", "ended", T, T + 1000)
    for name, value in fields.items():
        setattr(timeline, name, value)
    return timeline


def test_bars_ticks_and_shading_sit_on_one_clock() -> None:
    timeline = session(
        alerts=[AlertItem("a1", "phone", "critical", 0.9, T + 100, T + 200, 1),
                AlertItem("a2", "talking", "warning", 0.5, T + 500, None, 2),
                AlertItem("a3", "phone", "info", 0.4, T + 700, T + 701, 3)],
        offline=[(T + 300, T + 400), (T + 900, None)],
        pc_events=[PcEventView(1, "focus_lost", int((T + 250) * 1000), None, T)])
    root = ET.fromstring(str(timeline_svg(timeline)))
    bars = {rect.get("data-alert"): rect for rect in root.iter(f"{SVG}rect") if "bar" in (rect.get("class") or "")}
    inner = WIDTH - LEFT - RIGHT
    assert set(bars) == {"a1", "a2", "a3"}
    assert float(bars["a1"].get("x") or 0) == LEFT + 100 / 1000 * inner
    assert float(bars["a1"].get("width") or 0) == 100 / 1000 * inner
    assert float(bars["a2"].get("width") or 0) == 500 / 1000 * inner  # open: runs to the end
    assert float(bars["a3"].get("width") or 0) == 3.0  # a moment still shows
    assert bars["a1"].get("y") == bars["a3"].get("y") != bars["a2"].get("y")  # one row per kind
    assert bars["a1"].get("class") == "bar sev-critical"
    shaded = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "offline"]
    assert [float(r.get("width") or 0) for r in shaded] == [100 / 1000 * inner, 100 / 1000 * inner]
    ticks = [line for line in root.iter(f"{SVG}line") if "tick" in (line.get("class") or "")]
    assert len(ticks) == 1 and float(ticks[0].get("x1") or 0) == LEFT + 250 / 1000 * inner
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert labels[:3] == ["phone", "talking", "exam PC"] and labels[3:] == [clock(s) for s in range(0, 1000, 120)]


def test_names_are_escaped_and_clock_reads_minutes() -> None:
    timeline = session(alerts=[AlertItem('x"><script>', "a<b", "critical", 1.0, T, T + 5, 1)])
    text = str(timeline_svg(timeline))
    assert "<script>" not in text and "a&lt;b" in text
    ET.fromstring(text)  # still well-formed
    assert (clock(0), clock(65), clock(3725)) == ("0:00", "1:05", "1:02:05")
    assert re.search(r"aria-label=\"Timeline of the session: 1 unit alerts, 0 PC events\"", text)
