"""The placement blueprint: the page at ``/``, the MJPEG preview, the verdict as JSON.

The preview is ``multipart/x-mixed-replace``: one JPEG part per new frame the unit publishes, the last one
again every ``STREAM_KEEPALIVE`` seconds when the camera is quiet (so a closed browser is noticed). Each
open preview holds a server thread: at most ``[page] streams`` at once, past that 503.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, render_template

from edge_app.page.app import page

placement = Blueprint("placement", __name__)
BOUNDARY = "invigilframe"
STALE = 10.0  # seconds without a frame or a state update before the page says the unit is not running


def part(jpeg: bytes) -> bytes:
    """One part of the multipart stream."""
    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode("ascii")
    return head + jpeg + b"\r\n"


def verdict_json() -> dict[str, Any]:
    """The placement verdict (no image), with whether the unit is feeding the page at all and ``notice``: why the
    bridge will not take the unit (its refused credentials), or None."""
    state = page().state
    snap = state.snapshot()
    age = state.frame_age()
    found = snap["placement"]
    refused = snap["status"].get("credentials_refused")
    return {"ready": bool(found and found.get("usable")), "placement": found,
            "checking": found is None or not found.get("usable"),
            "camera": snap["status"].get("camera"), "frame_age": None if age is None else round(age, 1),
            "live": age is not None and age < STALE,
            "notice": refused.get("message") if isinstance(refused, dict) else None}


@placement.get("/")
def index() -> Any:
    return render_template("placement.html", verdict=verdict_json())


@placement.get("/api/placement")
def api_placement() -> Any:
    return jsonify(verdict_json())


@placement.get("/placement/stream")
def stream() -> Any:
    shared = page()
    if not shared.streams.acquire(blocking=False):
        abort(503, "too many previews are open")
    keepalive = float(current_app.config["STREAM_KEEPALIVE"])
    state = shared.state

    def frames() -> Iterator[bytes]:
        seq = 0
        while not state.closed:
            newer, jpeg = state.wait_frame(seq, keepalive)
            if state.closed:
                return
            if jpeg is not None:
                seq = newer
                yield part(jpeg)

    response = Response(frames(), mimetype=f"multipart/x-mixed-replace; boundary={BOUNDARY}")
    response.call_on_close(shared.streams.release)
    return response
