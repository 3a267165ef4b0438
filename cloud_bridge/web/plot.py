"""A session's timeline as inline SVG, drawn on the server: both angles on one clock (seconds from the start of
the session), the unit's alerts as bars per kind (their length the alert's duration), the PC's events as
ticks on a row of their own, offline stretches shaded across every row."""

from __future__ import annotations

from markupsafe import Markup, escape

from cloud_bridge.timeline import SessionTimeline

WIDTH, LEFT, RIGHT, TOP, ROW, AXIS = 960, 150, 16, 8, 26, 30
STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)


def clock(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) from the start."""
    whole = int(max(0.0, seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _step(span: float) -> int:
    return next((step for step in STEPS if span / step <= 10), STEPS[-1] * (1 + int(span // (STEPS[-1] * 10))))


def timeline_svg(timeline: SessionTimeline) -> Markup:
    """The plot; each alert's bar carries ``data-alert`` (its id) so the page can point at it."""
    start = timeline.start
    # the PC's and the unit's clocks may run a little outside the session: the plot takes in what it shows
    times = [start, timeline.end, *(a.start for a in timeline.alerts), *(e.t / 1000 for e in timeline.pc_events)]
    lo, hi = min(times), max(times)
    span = max(hi - lo, 1.0)
    kinds = sorted({a.kind for a in timeline.alerts})
    rows = [*kinds, "pc"]
    height = TOP + ROW * len(rows) + AXIS
    inner = WIDTH - LEFT - RIGHT

    def x(at: float) -> float:
        return round(LEFT + (min(max(at, lo), hi) - lo) / span * inner, 1)

    out = [f'<svg class="timeline" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
           f'xmlns="http://www.w3.org/2000/svg" aria-label="Timeline of the session: '
           f'{len(timeline.alerts)} unit alerts, {len(timeline.pc_events)} PC events">']
    for index, name in enumerate(rows):
        y = TOP + index * ROW
        label = "exam PC" if name == "pc" else name.replace("_", " ")
        out.append(f'<rect class="row{" alt" if index % 2 else ""}" x="{LEFT}" y="{y}" width="{inner}" '
                   f'height="{ROW}"/><text class="label" x="{LEFT - 8}" y="{y + ROW / 2 + 4}" '
                   f'text-anchor="end">{escape(label)}</text>')
    plot_bottom = TOP + ROW * len(rows)
    out.append(f'<line class="axis" x1="{LEFT}" x2="{LEFT + inner}" y1="{plot_bottom}" y2="{plot_bottom}"/>')
    step = _step(span)
    first = -int((start - lo) // step) * step if lo < start else 0
    mark = float(first)
    while start + mark <= hi + 1e-6:
        at = x(start + mark)
        out.append(f'<line class="grid" x1="{at}" x2="{at}" y1="{TOP}" y2="{plot_bottom + 4}"/>'
                   f'<text class="tickl" x="{at}" y="{plot_bottom + 18}" text-anchor="middle">'
                   f'{"-" if mark < 0 else ""}{clock(abs(mark))}</text>')
        mark += step
    for off_start, off_end in timeline.offline:
        end = timeline.end if off_end is None else off_end
        width = round(max(1.0, x(end) - x(off_start)), 1)
        out.append(f'<rect class="offline" x="{x(off_start)}" y="{TOP}" width="{width}" '
                   f'height="{plot_bottom - TOP}"><title>unit offline {clock(off_start - start)} – '
                   f'{clock(end - start)} ({end - off_start:.0f} s)</title></rect>')
    for number, alert in enumerate(timeline.alerts, 1):
        y = TOP + kinds.index(alert.kind) * ROW + 5
        end = timeline.end if alert.end is None else alert.end
        width = round(max(3.0, x(end) - x(alert.start)), 1)
        open_note = ", still open at the end" if alert.end is None else ""
        out.append(f'<rect class="bar sev-{escape(alert.severity)}" data-alert="{escape(alert.alert_id)}" '
                   f'x="{x(alert.start)}" y="{y}" width="{width}" height="{ROW - 10}" rx="2">'
                   f'<title>#{number} {escape(alert.kind)} ({escape(alert.severity)}), {clock(alert.start - start)}, '
                   f'{alert.duration(timeline.end):.0f} s{open_note}, confidence {alert.confidence:.2f}</title>'
                   f'</rect>')
    pc_y = TOP + (len(rows) - 1) * ROW
    for event in timeline.pc_events:
        at = x(event.t / 1000)
        out.append(f'<line class="tick pc-{escape(event.kind)}" x1="{at}" x2="{at}" y1="{pc_y + 4}" '
                   f'y2="{pc_y + ROW - 4}"><title>{escape(event.kind.replace("_", " "))} at '
                   f'{clock(event.t / 1000 - start)}</title></line>')
    out.append("</svg>")
    return Markup("".join(out))
