"""``python -m edge_app run --config FILE``: one session, messages printed as they happen.

SIGTERM and SIGINT stop the session cleanly: running alerts are ended, pending clips written. With a
``[link]`` section the unit is connected (edge_app.connected): alerts also go to the bridge as signed events.
The status LED and buzzer follow the printed messages (edge_app.indicators; off on a machine without GPIO).
"""

from __future__ import annotations

import functools
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from edge_app.capture.base import SourceError
from edge_app.config import EdgeConfig, load_for_service
from edge_app.indicators import StateTracker
from edge_app.indicators.driver import Indicators
from edge_app.indicators.patterns import Action

if TYPE_CHECKING:
    from edge_app.vision.models import VisionModels

log = logging.getLogger("edge_app")


def format_message(message: dict[str, Any]) -> str:
    """One readable line per message (the default output is JSON lines)."""
    kind = message["type"]
    if kind == "alert":
        evidence = message.get("evidence") or {}
        digest = f" evidence {evidence['sha256'][:12]}" if evidence.get("sha256") else ""
        return (f"{message['t']:8.2f}s  {message['phase']:<6} {message['kind']:<17} {message['severity']:<8} "
                f"conf {message['confidence']:.2f} since {message['since']:.2f}s{digest}")
    if kind == "calibration":
        verdict = "usable" if message["usable"] else "not usable: " + " ".join(message["guidance"])
        return f"{message['t']:8.2f}s  calibrated: placement {verdict}"
    return f"{message.get('t', 0):8.2f}s  {message.get('state', kind)}"


def enroll_jpeg(models: VisionModels, photo: bytes) -> Any:
    """The face template of an enrolled photo as the bridge sends it (JPEG or PNG bytes); ValueError when the
    photo is unreadable or holds no usable face."""
    from edge_app.vision.identity import enroll

    image = cv2.imdecode(np.frombuffer(photo, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("the enrolled photo is not a readable image")
    return enroll(models, cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


def page_publisher(config: EdgeConfig, models: VisionModels, device: Any = None) -> Any:
    """The feed of the unit's page (edge_app.page.publisher), mirrored into ``[page] state_dir``; None when
    ``[page] enabled`` is false or the folder cannot be made (the session runs without its page)."""
    if not config.page.enabled:
        return None
    from edge_app.page.publisher import PagePublisher
    from edge_app.page.state import PageState
    from edge_app.versions import installed_version

    software = installed_version() or "source tree"
    try:
        state = PageState(mirror=config.page.state_path(config.data_dir))
    except OSError as exc:
        log.error("the unit's page gets no preview: %s", exc)
        return None
    return PagePublisher(state, config.page, models, device.outbox.count if device is not None else None,
                         {"software": software, "models": f"{models.quant} on {models.runtime}"})


def _both(first: Callable[[Any], None] | None, second: Callable[[Any], None]) -> Callable[[Any], None]:
    """Call ``first`` then ``second``; a failing ``second`` (the page) is logged and never stops the first."""

    def call(item: Any) -> None:
        if first is not None:
            first(item)
        try:
            second(item)
        except Exception:
            log.exception("the unit's page could not take an update")

    return call


def run_session(path: Path, text: bool = False) -> int:
    from edge_app.loop import SessionRunner
    from edge_app.vision.identity import enroll
    from edge_app.vision.models import load_models
    from edge_app.vision.preprocess import read_rgb

    config = load_for_service(path)
    if config is None:
        return 2
    from edge_app.update.releases import Releases

    # booting until the first placement verdict; updating while an update holds its lock; a long press checks the
    # placement again
    tracker = StateTracker(updating=Releases(config.data_dir).running)
    indicators = Indicators(config.indicators, source=tracker.state)
    indicators.start()
    models = load_models(config.models.dir, config.models.quant, config.models.threads, config.models.runtime)
    template = None
    if config.identity.enrolled is not None:
        try:
            template = enroll(models, read_rgb(str(config.identity.enrolled)))
        except ValueError as exc:
            print(f"error: identity.enrolled {config.identity.enrolled}: {exc}", file=sys.stderr)
            return 2

    printing = threading.Lock()  # the link's thread prints refused commands: one whole line at a time

    def emit(message: dict[str, Any]) -> None:
        tracker.update(message)
        line = format_message(message) if text else json.dumps(message)
        with printing:
            print(line, flush=True)

    device = None
    if config.link is not None:
        from edge_app.connected import ConnectedDevice
        from edge_app.link.outbox import OutboxError
        from edge_app.protocol.keys import DeviceKeyError

        try:
            device = ConnectedDevice(config, config.link, functools.partial(enroll_jpeg, models))
        except (OSError, ValueError, DeviceKeyError, OutboxError) as exc:
            print(f"error: link: {exc}", file=sys.stderr)
            return 2
        device.emit_local = emit
        mqtt = device.mqtt
        tracker.connected = lambda: mqtt.connected

    page = page_publisher(config, models, device)
    send: Callable[[dict[str, Any]], None] = device.emit if device else emit
    frame_hook: Callable[[Any], None] | None = device.on_frame if device else None
    if page is not None:
        # The page takes the loop's messages and the connected unit's own (pairing, commands, refused
        # credentials): with a link, both pass through its emit_local.
        if device is not None:
            device.emit_local = _both(emit, page.emit)
        else:
            send = _both(send, page.emit)
        frame_hook = _both(frame_hook, page.on_frame)
        recheck = page.recheck
        indicators.on_action = lambda action, _state: recheck() if action is Action.PLACEMENT_CHECK else None
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    runner = SessionRunner(config, send, models, template, on_frame=frame_hook)
    if device is not None:
        device.attach(runner)
        device.start()
    try:
        stats = runner.run(stop)
    except SourceError as exc:
        print(f"error: camera: {exc}", file=sys.stderr)
        return 3
    finally:
        if device is not None:
            device.stop()
        if page is not None:
            page.state.close()
        indicators.close()
    fps = stats.frames / stats.wall_seconds if stats.wall_seconds else 0.0
    log.info("session over: %d frames analysed (%.1f/s), %d dropped, %d alerts", stats.frames, fps,
             stats.dropped, stats.alerts)
    return 0
