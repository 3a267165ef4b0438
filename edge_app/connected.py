"""A camera unit connected to the bridge: alerts to signed events in the outbox, pairing, commands, heartbeat.

Everything that changes the session runs on the analysis loop's thread, in :meth:`ConnectedDevice.on_frame`:
commands arriving on the MQTT thread wait in a queue until the next frame. While unpaired the unit looks for
the pairing QR code on the PC screen (and for a code typed with ``python -m edge_app pair``) and sends it to
the bridge; ``session_start`` (signed by the bridge, retained) brings the enrolled photo, from which the
unit computes the face template with its own models, and the rule overrides. A session's identity check
and rules last until its ``session_stop`` (or the start of another session): then the unit returns to the
template and rules it started with.

Intervals (heartbeat, pairing) are measured on ``clock`` (monotonic: a Pi without a real-time clock steps
its wall clock at boot); message timestamps are wall time.
"""

from __future__ import annotations

import base64
import json
import logging
import queue
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from edge_app import exam_flag
from edge_app.atomic import write_bytes_atomic
from edge_app.capture.base import Frame
from edge_app.config import EdgeConfig
from edge_app.evidence.storage import purge
from edge_app.link.config import LinkConfig
from edge_app.link.events import EventWriter
from edge_app.link.mqtt import MqttLink
from edge_app.link.outbox import Outbox, OutboxError
from edge_app.link.receipts import Receipts
from edge_app.link.stale import StaleCommands
from edge_app.link.uploads import EvidenceUploader
from edge_app.pairing import QrPairingScanner, take_pair_code
from edge_app.protocol import ProtocolError
from edge_app.protocol.commands import encode_stats, open_signed, seal
from edge_app.protocol.keys import load_or_create_key
from edge_app.protocol.placement import placement_code
from edge_app.rules.config import merged_rules

log = logging.getLogger(__name__)
TYPED_CODE_EVERY = 1.0  # seconds between looks for a typed pairing code
LINK_FILE = "link.json"  # in data_dir: when this process first reached the broker (seconds since 1970)
DRAIN_SECONDS = 5.0  # at stop, how long to wait for the outbox to empty while connected
PAIR_RESEND = 5.0  # seconds before the same code is sent again (the bridge answers once per request)
MAX_FPS = 1000.0  # the protocol's bound for the heartbeat's fps
MIN_FPS_SPAN = 0.1  # seconds a heartbeat's fps must span at least (the first frame right after start: none)


def read_temperature(path: Path = Path("/sys/class/thermal/thermal_zone0/temp")) -> float | None:
    try:
        return round(int(path.read_text().strip()) / 1000, 1)
    except (OSError, ValueError):
        return None


class ConnectedDevice:
    """Owns the outbox, the MQTT link and the uploader; plugs into a SessionRunner (emit and on_frame, then
    :meth:`attach`). ``enroll`` turns the session's photo (JPEG bytes) into a face template (ValueError when
    it holds no usable face); ``clock`` is monotonic seconds."""

    def __init__(self, config: EdgeConfig, link: LinkConfig, enroll: Callable[[bytes], Any],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config, self.link_config, self.enroll, self.clock = config, link, enroll, clock
        data = config.data_dir
        self.key = load_or_create_key(link.under(data, link.key_file))
        key = load_pem_public_key(link.bridge_key.read_bytes())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"link.bridge_key {link.bridge_key}: not an Ed25519 public key")
        self.bridge_key = key
        self.outbox = Outbox(link.under(data, link.outbox))
        self.writer = EventWriter(config.device_id, self.key, self.outbox, (1, 1))
        self.receipts = Receipts(self.outbox, key, config.device_id, link.broker.receipt_timeout)
        self.mqtt = MqttLink(link.broker, config.device_id, self.outbox, on_command=self._command,
                             receipts=self.receipts, on_refused=self._credentials)
        self.stale = StaleCommands(data / "ended_sessions.json")  # a lost session_stop resurrects nothing
        self.uploader = EvidenceUploader(link.under(data, link.uploads), link.evidence_url, config.device_id) \
            if link.evidence_url else None
        self.scanner = QrPairingScanner(link.pair_every)
        self.commands: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue(maxsize=100)
        self.session: dict[str, Any] | None = None
        self.runner: Any = None  # the SessionRunner, set by attach()
        self._base_template: Any = None  # the runner's template before any session (config identity.enrolled)
        # Local output (printing): called on the loop's thread, and on the link's for refused commands and
        # refused credentials.
        self.emit_local: Callable[[dict[str, Any]], None] = lambda _m: None
        self._sent_code: tuple[str, float] | None = None
        self._next_typed = self._next_stats = 0.0
        self.camera = "ok"  # or "stalled", from the loop's status messages; sent in the heartbeat
        self.placement: str | None = None  # the last placement verdict (edge_app/protocol/placement.py), too
        self._linked = False  # connected since this process started (written once to LINK_FILE)
        self._stopping = threading.Event()
        self._frames, self._frames_at = 0, clock()
        self.started = clock()

    # -- lifecycle ----------------------------------------------------------------------------------------

    def attach(self, runner: Any) -> None:
        """The SessionRunner whose template, rules and alerts the commands change."""
        self.runner, self._base_template = runner, runner.template

    def start(self) -> None:
        threading.Thread(target=self._idle_heartbeat, name="heartbeat", daemon=True).start()
        self.mqtt.start()
        if self.uploader is not None:
            self.uploader.start()

    def stop(self) -> None:
        if self._stopping.is_set():
            return  # stopped already
        self._stopping.set()
        exam_flag.clear(self.config.data_dir)
        self.mqtt.wake()
        deadline = time.monotonic() + DRAIN_SECONDS  # the last events go out now if the broker is there;
        while self.mqtt.connected and self.outbox.count() and time.monotonic() < deadline:  # else next start
            time.sleep(0.05)
        self.send_stats(camera="ended")  # after the drain: its queue is what is left for the next start
        time.sleep(0.1)  # the heartbeat
        self.mqtt.stop()
        if self.uploader is not None:
            self.uploader.stop()
        self.outbox.close()

    # -- hooks for the session loop -----------------------------------------------------------------------

    def emit(self, message: dict[str, Any]) -> None:
        """Every loop message: printed locally; alerts become signed events in the outbox."""
        self.emit_local(message)
        if message.get("type") == "calibration" and isinstance(message.get("checks"), dict):
            self.placement = placement_code(message["checks"])  # the next heartbeat takes it to the bridge
        if message.get("state") in ("camera_stalled", "camera_recovered"):
            self.camera = "stalled" if message["state"] == "camera_stalled" else "ok"
            self.send_stats()  # the bridge and the proctor page learn it now
        if message.get("type") != "alert":
            return
        try:
            written = self.writer.write(message)
        except (OutboxError, ProtocolError) as exc:  # the session goes on; the alert is still printed locally
            log.error("alert %s not stored for the bridge: %s", message.get("id"), exc)
            self.emit_local({"type": "status", "state": "event_not_stored", "t": message.get("t"),
                             "reason": str(exc)[:300]})
            return
        if written is not None:
            self.mqtt.wake()
        evidence = message.get("evidence") or {}
        if self.uploader is not None and evidence.get("path"):
            self.uploader.add(Path(evidence["path"]))

    def on_frame(self, frame: Frame) -> None:
        self._frames += 1
        self.writer.frame_size = (frame.image.shape[1], frame.image.shape[0])  # boxes become shares of it
        while True:
            try:
                name, fields = self.commands.get_nowait()
            except queue.Empty:
                break
            self._apply(name, fields, frame.t)
        now = self.clock()
        if self.session is None:
            self._look_for_code(frame, now)
        if now >= self._next_stats:
            self._next_stats = now + self.link_config.stats_every
            self.send_stats()
            self._report_refused()

    def _report_refused(self) -> None:
        """Alerts the outbox refused (a full disk) reach the bridge as a gap once it takes events again."""
        try:
            if self.writer.report_refused() is not None:
                self.mqtt.wake()
        except (OutboxError, ProtocolError) as exc:  # still full: the next heartbeat tries again
            log.debug("refused alerts not reported yet: %s", exc)

    # -- commands (MQTT thread: checked, then queued for the loop) ----------------------------------------

    def _command(self, name: str, payload: bytes) -> None:
        if not payload:
            return  # a cleared retained message
        try:
            fields = open_signed(name, payload, self.bridge_key, to=self.config.device_id)
        except ProtocolError as exc:
            log.warning("command %s refused: %s", name, exc)
            self.emit_local({"type": "status", "state": "command_refused", "command": name, "reason": str(exc)})
            return
        if name == "evidence_purge":  # touches no session state: done here, not on the loop's thread
            self._purge(fields["digests"])
            return
        try:
            self.commands.put_nowait((name, fields))
        except queue.Full:
            log.warning("command %s dropped: the loop is not taking commands", name)

    def _credentials(self, reason: str | None) -> None:
        """The broker refuses this unit's credentials (revoked, or a wrong password), or took them again (None):
        the page and the LED say so, since waiting will not fix it."""
        if reason is None:
            self.emit_local({"type": "status", "state": "credentials_accepted"})
        else:
            self.emit_local({"type": "status", "state": "credentials_refused", "reason": reason})

    def _purge(self, digests: list[str]) -> None:
        """The bridge deleted these snapshots (its retention): delete the unit's copies and their clips."""
        removed = purge(self.config.evidence_dir(), set(digests))
        log.info("evidence_purge: %d digest(s), %d file(s) removed", len(digests), len(removed))
        self.emit_local({"type": "status", "state": "evidence_purged", "digests": len(digests),
                         "files": len(removed)})

    def _apply(self, name: str, fields: dict[str, Any], t: float) -> None:
        current = self.session["session"] if self.session else None
        if name == "pair":
            self.emit_local({"type": "status", "state": "paired" if fields["ok"] else "pair_refused", "t": t,
                             **{k: fields[k] for k in ("session", "exam", "candidate", "reason") if k in fields}})
            return
        stale = self.stale.stale(name, fields)
        if stale is not None:
            log.info("command %s ignored: %s", name, stale)
            return
        self.stale.applied(name, fields)
        if name == "session_start":
            if current == fields["session"]:
                return  # the retained start again, after a reconnect
            if current is not None:  # another session replaces this one without a stop: close it first
                self._end_session(current, t)
            self._set_photo(fields.get("photo"), t)
            self._set_rules(fields.get("rules"), t)
            self.session = fields
            exam_flag.mark(self.config.data_dir, fields["session"])  # no update starts while it runs
            self.emit_local({"type": "status", "state": "session_started", "t": t, "session": fields["session"],
                             "exam": fields["exam"], "candidate": fields["candidate"]})
            return
        if current != fields.get("session"):
            log.info("command %s for session %s ignored (current: %s)", name, fields.get("session"), current)
            return
        if name == "session_stop":
            self._end_session(current, t)
        elif name == "thresholds":
            self._set_rules(fields["rules"], t)
        elif name == "template":
            self._set_photo(fields["photo"], t)

    def _end_session(self, current: str | None, t: float) -> None:
        """End the running alerts and return to the template and rules the unit started with (unpaired)."""
        if current is not None:
            self.stale.end(current)
        self.runner.end_alerts()
        self.runner.set_template(self._base_template)
        self.runner.set_rules(self.config.rules)
        self.session, self._sent_code = None, None
        exam_flag.clear(self.config.data_dir)
        self.emit_local({"type": "status", "state": "session_stopped", "t": t, "session": current})

    def _set_photo(self, photo: str | None, t: float) -> None:
        """The session's template from its photo; none (or a photo without a face) keeps the current one."""
        if not photo:
            return
        try:
            template = self.enroll(base64.urlsafe_b64decode(photo + "=" * (-len(photo) % 4)))
        except ValueError as exc:  # no usable face in the photo: the current template stays
            self.emit_local({"type": "status", "state": "template_refused", "t": t, "reason": str(exc)})
            return
        self.runner.set_template(template)

    def _set_rules(self, override: dict[str, Any] | None, t: float) -> None:
        if not override:
            return
        try:
            self.runner.set_rules(merged_rules(self.config.rules, override))
        except ValueError as exc:
            self.emit_local({"type": "status", "state": "thresholds_refused", "t": t, "reason": str(exc)[:300]})

    # -- pairing and heartbeat ----------------------------------------------------------------------------

    def _look_for_code(self, frame: Frame, now: float) -> None:
        code, via = self.scanner.scan(frame.image, frame.t), "qr"
        if code is None and now >= self._next_typed:
            self._next_typed = now + TYPED_CODE_EVERY
            code, via = take_pair_code(self.config.data_dir), "typed"
        if code is None:
            return
        if self._sent_code is not None and self._sent_code[0] == code and now - self._sent_code[1] < PAIR_RESEND:
            return
        self._sent_code = (code, now)
        self.mqtt.send("pair", seal("pair_request", {"d": self.config.device_id, "code": code, "via": via},
                                    self.key, int(time.time() * 1000)), qos=1)
        self.emit_local({"type": "status", "state": "pairing", "t": frame.t, "via": via})

    def _idle_heartbeat(self) -> None:
        """Heartbeats while no frame comes (a stalled camera): on_frame sends them otherwise."""
        every = self.link_config.stats_every
        while not self._stopping.wait(every):
            if self.clock() >= self._next_stats + every:  # the loop has missed a whole period
                self._next_stats = self.clock() + every
                self.send_stats()

    def send_stats(self, camera: str | None = None) -> None:
        if not self._linked and self.mqtt.connected:  # the update's health check waits for this after a switch
            self._linked = True
            try:
                write_bytes_atomic(self.config.data_dir / LINK_FILE,
                                   json.dumps({"connected_at": time.time()}).encode())
            except OSError as exc:  # a full disk: the session goes on (the health check then fails, and says so)
                log.warning("%s not written: %s", LINK_FILE, exc)
        now = self.clock()
        elapsed = now - self._frames_at
        stats = self.runner.stats if self.runner is not None else None
        recent = stats.loop_ms[-50:] if stats is not None else []
        try:
            disk = shutil.disk_usage(self.config.data_dir).free // 1_000_000
        except OSError:
            disk = None
        fps = round(min(MAX_FPS, self._frames / elapsed), 2) if elapsed >= MIN_FPS_SPAN else None
        fields = {"d": self.config.device_id, "fps": fps,
                  "inf_ms": round(sorted(recent)[len(recent) // 2], 1) if recent else None,
                  "queue": self.outbox.count(), "temp": read_temperature(), "disk_mb": disk,
                  "session": self.session["session"] if self.session else None,
                  "uptime": max(0, int(now - self.started)), "camera": camera or self.camera,
                  "placement": self.placement}
        self._frames, self._frames_at = 0, now
        try:
            payload = encode_stats(fields, int(time.time() * 1000))
        except ProtocolError as exc:  # a heartbeat is never worth stopping the session for
            log.warning("heartbeat not sent: %s", exc)
            return
        self.mqtt.send("stats", payload)
