"""The connected camera unit (edge_app.connected) against a real Mosquitto, with the real models: alerts become
signed events at the broker, signed commands set and end the session, pairing codes and heartbeats go out.

Commands are applied on the loop's thread at the next frame: most tests hand the unit frames themselves (so
what happens between two frames is exact); two run the real session loop."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge_app.capture.base import Frame, FrameSource
from edge_app.config import ConfigError, EdgeConfig, load, parse
from edge_app.connected import LINK_FILE, PAIR_RESEND, ConnectedDevice
from edge_app.indicators import State, StateTracker
from edge_app.loop import SessionRunner
from edge_app.pairing import write_pair_code
from edge_app.protocol import Event, chain_hash, decode_event, device_topic, evidence_digest, new_event_id
from edge_app.protocol.commands import decode_stats, open_signed, qr_payload, seal
from edge_app.protocol.keys import public_pem
from edge_app.rules.config import RulesConfig, merged_rules
from edge_app.rules.presets import PRESETS
from edge_app.run import enroll_jpeg, run_session
from edge_app.vision.models import VisionModels, load_models
from tests.edge.conftest import Scene, write_scenario
from tests.edge.link.test_mqtt import locked_broker
from tests.edge.link.test_uploads import Bridge as EvidenceServer
from tests.mosquitto import Mosquitto, wait_for

DEVICE = "unit-7"
SESSION = {"session": "s-1", "exam": "exam-1", "candidate": "cand-1"}
BLANK = np.full((480, 640, 3), 90, np.uint8)
ABSENT_FAST = {"min_duration": 1, "end_after": 0.6, "window": 0.6}  # an absence alert within a few frames
Photo = Callable[[str], np.ndarray]
LIVE_WAIT = 120.0  # seconds a live-loop test may wait for the models to get somewhere (a loaded machine)
__all__ = ["locked_broker"]  # the fixture: a broker that checks this unit's password


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class BridgeSide:
    """A paho client in the bridge's place: publishes signed commands, sees everything the unit publishes, and
    receipts each event as the bridge does once it is stored (events arrive in order here)."""

    def __init__(self, port: int, key: Ed25519PrivateKey) -> None:
        self.key, self._lock = key, threading.Lock()
        self.messages: list[tuple[str, bytes, bool]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bridge", protocol=MQTTProtocolVersion.MQTTv5)
        subscribed = threading.Event()
        self.client.on_connect = lambda c, *_: c.subscribe(device_topic(DEVICE, "#"), qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.connect("127.0.0.1", port, 30)
        self.client.loop_start()
        wait_for(subscribed.is_set, what="the bridge to subscribe")

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))
        seq = json.loads(message.payload).get("n") if message.topic == device_topic(DEVICE, "event") else None
        if isinstance(seq, int):  # a real event (a test may put other bytes in the outbox)
            receipt = seal("receipt", {"n": seq}, self.key, int(time.time() * 1000), to=DEVICE)
            self.client.publish(device_topic(DEVICE, "cmd/receipt"), receipt, qos=1)

    def command(self, name: str, fields: dict[str, Any], retain: bool = False,
                key: Ed25519PrivateKey | None = None) -> None:
        self.publish(f"cmd/{name}", seal(name, fields, key or self.key, int(time.time() * 1000), to=DEVICE), retain)

    def publish(self, leaf: str, payload: bytes, retain: bool = False) -> None:
        wait_for(self.client.is_connected, what="the bridge to (re)connect")
        info = self.client.publish(device_topic(DEVICE, leaf), payload, qos=1, retain=retain)
        info.wait_for_publish(10)

    def received(self, leaf: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _ in self.messages if t == device_topic(DEVICE, leaf)]

    def events(self, device_key: Ed25519PrivateKey) -> list[tuple[Event, bytes]]:
        return [(decode_event(p, device_key.public_key()), p) for p in self.received("event")]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Unit:
    """A ConnectedDevice plugged into a SessionRunner the way edge_app.run does it."""

    def __init__(self, config: EdgeConfig, models: VisionModels, clock: Callable[[], float] = time.monotonic) -> None:
        assert config.link is not None
        self.config, self.models = config, models
        self.messages: list[dict[str, Any]] = []
        self.device = ConnectedDevice(config, config.link, functools.partial(enroll_jpeg, models), clock)
        self.device.emit_local = self.messages.append
        self.runner = SessionRunner(config, self.device.emit, models, on_frame=self.device.on_frame)
        self.device.attach(self.runner)
        self.frames = 0

    def start(self) -> None:
        """Start the link and wait until commands published from now on reach the unit."""
        self.device.start()
        wait_for(lambda: self.device.mqtt.subscribed, what="the unit to subscribe to its commands")

    def states(self) -> list[str]:
        return [m["state"] for m in list(self.messages) if m["type"] == "status"]

    def frame(self, image: np.ndarray = BLANK) -> None:
        self.frames += 1
        self.device.on_frame(Frame(image, self.frames / 10, self.frames))

    def apply(self, count: int = 1) -> None:
        """Wait until ``count`` commands passed the checks, then give the unit the frame that applies them."""
        wait_for(lambda: self.device.commands.qsize() >= count, what=f"{count} command(s) queued")
        self.frame()


@pytest.fixture(scope="module")
def models(models_dir: Path) -> VisionModels:
    return load_models(models_dir, "int8", threads=1)


@pytest.fixture(scope="module")
def jpeg() -> Callable[[np.ndarray], bytes]:
    def encode(rgb: np.ndarray) -> bytes:
        scale = 400 / rgb.shape[0]
        small = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        return bytes(cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR))[1])
    return encode


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def bridge_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def bridge(broker: Mosquitto, bridge_key: Ed25519PrivateKey) -> Iterator[BridgeSide]:
    side = BridgeSide(broker.port, bridge_key)
    yield side
    side.close()


@pytest.fixture
def make_unit(tmp_path: Path, broker: Mosquitto, bridge_key: Ed25519PrivateKey,
              models: VisionModels) -> Iterator[Callable[..., Unit]]:
    """make_unit(clock=..., link={...}, camera=...) -> a Unit on this test's broker; stopped at the end."""
    made: list[Unit] = []
    (tmp_path / "bridge.pub").write_text(public_pem(bridge_key))

    def make(clock: Callable[[], float] = time.monotonic, link: dict[str, Any] | None = None,
             camera: Path | None = None) -> Unit:
        config = parse({"device_id": DEVICE, "data_dir": str(tmp_path / "data"),
                        "camera": {"type": "scenario", "path": str(camera or tmp_path)},
                        "analysis": {"calibration_seconds": 1}, "rules": {"absent": ABSENT_FAST},
                        "link": {"broker": {"host": "127.0.0.1", "port": broker.port, "backoff_min": 0.05,
                                            "backoff_max": 0.3},
                                 "bridge_key": str(tmp_path / "bridge.pub"), "stats_every": 5, **(link or {})}},
                       environ={})
        unit = Unit(config, models, clock)
        made.append(unit)
        return unit

    yield make
    for unit in made:
        unit.device.stop()
        unit.runner.evidence.close()


def test_merged_rules_a_preset_replaces_and_kinds_merge_field_by_field() -> None:
    base = RulesConfig.model_validate({"phone": {"min_score": 0.3}, "absent": ABSENT_FAST})
    cases: list[tuple[dict[str, Any], Callable[[RulesConfig], bool]]] = [
        ({"phone": {"severity": "warning"}},
         lambda r: r.phone.severity == "warning" and r.phone.min_score == 0.3 and r.absent == base.absent),
        ({"talking": {"enabled": False}}, lambda r: not r.talking.enabled and r.model_dump(exclude={"talking"})
         == base.model_dump(exclude={"talking"})),
        ({"preset": "strict"}, lambda r: r.preset == "strict" and r.phone.min_score == PRESETS["strict"]["phone"]
         ["min_score"] and r.absent.min_duration == PRESETS["strict"]["absent"]["min_duration"]),
        ({"preset": "relaxed", "absent": {"min_duration": 2}},
         lambda r: r.absent.min_duration == 2 and r.absent.cooldown == PRESETS["relaxed"]["absent"]["cooldown"]
         and r.phone.min_score == PRESETS["relaxed"]["phone"]["min_score"]),
        ({}, lambda r: r == base),
    ]
    for override, check in cases:
        assert check(merged_rules(base, override)), override
    bad: dict[str, Any]
    for bad in ({"phone": {"min_score": 7}}, {"phone": 3}, {"reboot": {}}, {"preset": "lenient"}):
        with pytest.raises(ValueError):
            merged_rules(base, bad)
    assert base.phone.min_score == 0.3  # never changed in place


def test_a_signed_session_start_sets_the_template_and_rules(
        make_unit: Callable[..., Unit], bridge: BridgeSide, broker: Mosquitto, models: VisionModels,
        jpeg: Callable[[np.ndarray], bytes], photo: Photo) -> None:
    unit = make_unit()
    enrolled = jpeg(photo("obama.jpg"))
    rules = {"phone": {"min_score": 0.3}, "left_zone": {"margin": 0.5}, "identity_mismatch": {"min_similarity": 0.5}}
    bridge.command("session_start", {**SESSION, "photo": b64(enrolled), "rules": rules}, retain=True)
    unit.start()
    unit.apply()
    assert [m for m in unit.messages if m.get("state") == "session_started"] == [
        {"type": "status", "state": "session_started", "t": 0.1, **SESSION}]
    assert unit.device.session is not None and unit.device.session["session"] == "s-1"
    assert unit.runner.analyzer.template is not None
    assert np.allclose(unit.runner.analyzer.template, enroll_jpeg(models, enrolled))
    now, base = unit.runner.config.rules, unit.config.rules
    assert now.phone.min_score == 0.3 and now.phone.severity == base.phone.severity
    assert now.absent == base.absent and now.absent.min_duration == 1  # the unit's own config stays underneath
    assert unit.runner.analyzer.zone_margin == 0.5 and unit.runner.analyzer.identity_threshold == 0.5

    broker.restart()  # the retained start comes again on the reconnect: the session goes on, not restarts
    unit.apply()
    assert unit.states().count("session_started") == 1 and unit.device.session["session"] == "s-1"


def test_a_command_not_signed_by_the_bridge_is_refused_and_changes_nothing(
        make_unit: Callable[..., Unit], bridge: BridgeSide, jpeg: Callable[[np.ndarray], bytes],
        photo: Photo) -> None:
    unit = make_unit()
    unit.start()
    forged = {**SESSION, "photo": b64(jpeg(photo("biden.jpg"))), "rules": {"phone": {"enabled": False}}}
    bridge.command("session_start", forged, key=Ed25519PrivateKey.generate())
    bridge.publish("cmd/session_start", b"not JSON")
    bridge.command("session_stop", {"session": "s-1"}, key=Ed25519PrivateKey.generate())
    wait_for(lambda: unit.states().count("command_refused") == 3, what="three refusals")
    refusals = [m for m in unit.messages if m.get("state") == "command_refused"]
    assert [m["reason"].split(":")[0] for m in refusals] == ["bad_signature", "malformed", "bad_signature"]
    unit.frame()
    assert unit.device.commands.empty() and unit.device.session is None
    assert unit.runner.analyzer.template is None and unit.runner.config.rules == unit.config.rules
    assert "session_started" not in unit.states()

    bridge.command("session_start", SESSION)  # the same command signed by the bridge is taken
    unit.apply()
    assert unit.states()[-1] == "session_started"


def test_commands_for_another_session_are_ignored_and_bad_ones_refused(
        make_unit: Callable[..., Unit], bridge: BridgeSide, jpeg: Callable[[np.ndarray], bytes],
        photo: Photo) -> None:
    unit = make_unit()
    unit.start()
    bridge.command("session_start", SESSION)
    unit.apply()
    bridge.command("session_stop", {"session": "s-2"})
    bridge.command("template", {"session": "s-2", "photo": b64(jpeg(photo("obama.jpg")))})
    bridge.command("thresholds", {"session": "s-1", "rules": {"phone": {"min_score": 7}}})
    unit.apply(3)
    assert unit.states() == ["session_started", "thresholds_refused"]
    assert unit.device.session is not None and unit.device.session["session"] == "s-1"
    assert unit.runner.analyzer.template is None and unit.runner.config.rules == unit.config.rules

    bridge.command("thresholds", {"session": "s-1", "rules": {"preset": "strict"}})
    bridge.command("template", {"session": "s-1", "photo": b64(jpeg(BLANK))})  # no face in it
    unit.apply(2)
    assert unit.runner.config.rules.preset == "strict"
    assert unit.runner.config.rules.absent.min_duration == PRESETS["strict"]["absent"]["min_duration"]
    assert unit.states()[-1] == "template_refused" and unit.runner.analyzer.template is None


def test_a_new_session_does_not_inherit_the_previous_candidate(
        make_unit: Callable[..., Unit], bridge: BridgeSide, jpeg: Callable[[np.ndarray], bytes],
        photo: Photo) -> None:
    unit = make_unit()
    unit.start()
    bridge.command("session_start", {**SESSION, "photo": b64(jpeg(photo("obama.jpg"))),
                                     "rules": {"phone": {"min_score": 0.2}}})
    unit.apply()
    assert unit.runner.analyzer.template is not None and unit.runner.config.rules.phone.min_score == 0.2
    second = {"session": "s-2", "exam": "exam-1", "candidate": "cand-2"}  # no photo, no rules; no stop before
    bridge.command("session_start", second)
    unit.apply()
    assert unit.states() == ["session_started", "session_stopped", "session_started"]
    assert unit.messages[-2]["session"] == "s-1" and unit.messages[-1]["session"] == "s-2"
    assert unit.runner.analyzer.template is None and unit.runner.config.rules == unit.config.rules


def test_a_late_or_left_over_command_cannot_resurrect_an_ended_session(
        make_unit: Callable[..., Unit], bridge: BridgeSide) -> None:
    unit = make_unit()
    unit.start()
    bridge.command("session_start", {**SESSION, "c": 5}, retain=True)
    unit.apply()
    bridge.command("thresholds", {"session": "s-1", "rules": {"preset": "strict"}, "c": 7})
    bridge.command("thresholds", {"session": "s-1", "rules": {"preset": "relaxed"}, "c": 6})  # late: older
    unit.apply(2)
    assert unit.runner.config.rules.preset == "strict"
    bridge.command("session_stop", {"session": "s-1", "c": 8})  # the clear of the retained start is lost
    unit.apply()
    assert unit.states() == ["session_started", "session_stopped"] and unit.device.session is None
    unit.device.stop()

    again = make_unit()  # a restart: the left-over retained start of s-1 arrives on the new connection
    again.start()
    wait_for(lambda: again.device.commands.qsize() >= 1, what="the retained start at the restarted unit")
    again.frame()
    assert again.device.session is None and "session_started" not in again.states()
    bridge.command("session_start", {"session": "s-2", "exam": "exam-1", "candidate": "cand-2", "c": 9})
    again.apply()  # a new session is taken
    assert again.device.session is not None and again.device.session["session"] == "s-2"


def test_typed_and_qr_codes_become_signed_pair_requests_sent_once_per_pair_resend(
        make_unit: Callable[..., Unit], bridge: BridgeSide, tmp_path: Path) -> None:
    clock = FakeClock()
    unit = make_unit(clock)
    unit.start()
    data = unit.config.data_dir

    def requests() -> list[dict[str, Any]]:
        return [open_signed("pair_request", p, unit.device.key.public_key()) for p in bridge.received("pair")]

    write_pair_code(data, "abcd-efgh")
    unit.frame()
    wait_for(lambda: len(requests()) == 1, what="the pair request")
    assert {k: requests()[0][k] for k in ("d", "code", "via")} == {"d": DEVICE, "code": "ABCDEFGH", "via": "typed"}
    clock.now += 1.5  # past the next look for a typed code, within PAIR_RESEND
    write_pair_code(data, "ABCDEFGH")
    unit.frame()
    assert not (data / "pair_code").exists() and unit.states() == ["pairing"]  # taken, not sent again
    write_pair_code(data, "JKMNPQRS")  # another code goes out at once
    clock.now += 1.5
    unit.frame()
    clock.now += PAIR_RESEND
    symbol = cv2.QRCodeEncoder.create().encode(qr_payload("ABCDEFGH"))  # the same code on the PC screen
    image = BLANK.copy()
    big = cv2.resize(symbol, None, fx=8, fy=8, interpolation=cv2.INTER_NEAREST)
    image[40:40 + big.shape[0], 40:40 + big.shape[1]] = cv2.cvtColor(big, cv2.COLOR_GRAY2RGB)
    for _ in range(6):  # the scanner looks twice a second of frame time
        unit.frame(image)
    wait_for(lambda: len(requests()) == 3, what="three pair requests")
    assert [(r["code"], r["via"]) for r in requests()] == [("ABCDEFGH", "typed"), ("JKMNPQRS", "typed"),
                                                           ("ABCDEFGH", "qr")]
    assert unit.states() == ["pairing"] * 3

    bridge.command("pair", {"ok": True, **SESSION})
    bridge.command("pair", {"ok": False, "reason": "unknown code"})
    unit.apply(2)
    assert [(m["state"], m.get("session"), m.get("reason")) for m in unit.messages[-2:]] == [
        ("paired", "s-1", None), ("pair_refused", None, "unknown code")]


def test_the_heartbeat_decodes_with_fps_queue_and_disk(make_unit: Callable[..., Unit], bridge: BridgeSide) -> None:
    clock = FakeClock(1000.0)
    unit = make_unit(clock)  # stats_every = 5
    unit.device.outbox.put_raw(new_event_id(), device_topic(DEVICE, "event"), b"{}")  # waiting: the link is not up
    unit.frame()  # the first heartbeat, right at start: too short a span for an fps
    for _ in range(20):
        clock.now += 0.25
        unit.frame()  # the 20th, 5 s later, is the second heartbeat's
    unit.device.start()  # heartbeats wait for the connection
    wait_for(lambda: len(bridge.received("stats")) == 2, what="two heartbeats")
    first, second = (decode_stats(p) for p in bridge.received("stats"))
    assert "fps" not in first and first["uptime"] == 0
    assert second["fps"] == 4.0 and second["uptime"] == 5
    for stats in (first, second):
        assert stats["d"] == DEVICE and stats["queue"] == 1 and stats["camera"] == "ok"
        assert isinstance(stats["disk_mb"], int) and stats["disk_mb"] > 0 and "session" not in stats
        assert "placement" not in stats  # no verdict yet


def test_the_heartbeat_carries_the_last_placement_verdict(make_unit: Callable[..., Unit], bridge: BridgeSide) -> None:
    unit = make_unit(FakeClock(1000.0))
    unit.device.start()
    checks = {"candidate": True, "face": True, "hands": False, "desk": True, "screen": False, "light": True}
    unit.device.emit({"type": "calibration", "t": 5.0, "usable": False, "checks": checks, "guidance": []})
    wait_for(lambda: unit.device.mqtt.connected, what="the link")
    unit.device.send_stats()
    wait_for(lambda: len(bridge.received("stats")) >= 1, what="a heartbeat")
    assert decode_stats(bridge.received("stats")[-1])["placement"] == "hands,screen"
    linked = json.loads((unit.device.config.data_dir / LINK_FILE).read_text())  # for the update's health check
    assert abs(linked["connected_at"] - time.time()) < 60


def test_a_stalled_camera_is_reported_at_once_and_heartbeats_go_on_without_frames(
        make_unit: Callable[..., Unit], bridge: BridgeSide) -> None:
    clock = FakeClock(1000.0)
    unit = make_unit(clock)  # stats_every = 5
    unit.device.start()
    unit.device.emit({"type": "status", "state": "camera_stalled", "t": 3.0, "seconds": 5.0})
    wait_for(lambda: len(bridge.received("stats")) == 1, what="the heartbeat of the stall")
    assert decode_stats(bridge.received("stats")[0])["camera"] == "stalled"
    clock.now += 11  # no frame for two periods: the idle heartbeat speaks for the unit
    wait_for(lambda: len(bridge.received("stats")) == 2, seconds=15, what="a heartbeat without frames")
    assert decode_stats(bridge.received("stats")[1])["camera"] == "stalled"
    unit.device.emit({"type": "status", "state": "camera_recovered", "t": 20.0})
    wait_for(lambda: len(bridge.received("stats")) == 3, what="the heartbeat of the recovery")
    assert decode_stats(bridge.received("stats")[2])["camera"] == "ok"


class Room(FrameSource):
    """A camera on a desk (not live: every frame is analysed): the candidate sits for ``seated`` frames, then the
    seat stays empty, until ``limit`` frames or close()."""

    type = "room"

    def __init__(self, person: list[np.ndarray], empty: list[np.ndarray], seated: int, limit: int = 1500) -> None:
        self.person, self.empty, self.seated, self.limit = person, empty, seated, limit
        self.index = 0

    def open(self) -> None:
        pass

    def read(self) -> Frame | None:
        if self.index >= self.limit:
            return None
        images = self.person if self.index < self.seated else self.empty
        frame = Frame(images[self.index % len(images)], self.index / 5, self.index)  # 5 frames a second
        self.index += 1
        return frame

    def close(self) -> None:
        pass

    @property
    def live(self) -> bool:
        return False


def test_thresholds_that_switch_a_running_kind_off_end_its_alert_within_the_session(
        make_unit: Callable[..., Unit], bridge: BridgeSide, jpeg: Callable[[np.ndarray], bytes],
        photo: Photo, scene: Scene) -> None:
    unit = make_unit()
    unit.start()
    room = Room([scene("obama2.jpg", i) for i in range(3)], [scene(None, i) for i in range(3)], seated=8,
                limit=1_000_000)  # the camera never runs out: the end must come from the new rules
    stop = threading.Event()
    loop = threading.Thread(target=unit.runner.run, args=(stop, room), daemon=True)
    loop.start()
    try:
        bridge.command("session_start", {**SESSION, "photo": b64(jpeg(photo("obama.jpg")))}, retain=True)

        def alerts() -> list[tuple[str, str]]:
            return [(m["kind"], m["phase"]) for m in list(unit.messages) if m["type"] == "alert"]

        wait_for(lambda: ("absent", "start") in alerts(), LIVE_WAIT, "the absence alert")
        bridge.command("thresholds", {"session": "s-1", "rules": {"absent": {"enabled": False}}})
        wait_for(lambda: ("absent", "end") in alerts(), LIVE_WAIT, "the absence alert to end")
        assert loop.is_alive() and unit.device.session is not None  # within the session, the camera running
        assert "session_stopped" not in unit.states()
        assert not unit.runner.config.rules.absent.enabled
        wait_for(lambda: len(bridge.received("event")) >= 2, what="the start and end events at the broker")
        (start, _), (end, _) = bridge.events(unit.device.key)[:2]
        assert (start.kind, start.phase, end.kind, end.phase) == ("absent", "start", "absent", "end")
        assert end.alert_id == start.event_id
    finally:
        stop.set()
        loop.join(30)
    assert not loop.is_alive() and alerts().count(("absent", "start")) == 1  # the empty seat raises no other


def test_session_stop_ends_the_running_alerts_and_returns_to_unpaired(
        make_unit: Callable[..., Unit], bridge: BridgeSide, jpeg: Callable[[np.ndarray], bytes],
        photo: Photo, scene: Scene) -> None:
    unit = make_unit()
    unit.start()
    room = Room([scene("obama2.jpg", i) for i in range(3)], [scene(None, i) for i in range(3)], seated=8)
    stop = threading.Event()
    loop = threading.Thread(target=unit.runner.run, args=(stop, room), daemon=True)
    loop.start()
    try:
        bridge.command("session_start", {**SESSION, "photo": b64(jpeg(photo("obama.jpg"))),
                                         "rules": {"phone": {"min_score": 0.5}}}, retain=True)
        wait_for(lambda: "session_started" in unit.states(), LIVE_WAIT, "the session to start")
        assert unit.runner.analyzer.template is not None

        def alerts() -> list[tuple[str, str]]:
            return [(m["kind"], m["phase"]) for m in list(unit.messages) if m["type"] == "alert"]

        wait_for(lambda: ("absent", "start") in alerts(), LIVE_WAIT, "the absence alert")
        bridge.publish("cmd/session_start", b"", retain=True)  # as the bridge does: clear the start, then stop
        bridge.command("session_stop", {"session": "s-1"})
        wait_for(lambda: "session_stopped" in unit.states(), LIVE_WAIT, "the session to stop")
        stopped = next(i for i, m in enumerate(unit.messages) if m.get("state") == "session_stopped")
        ends = [i for i, m in enumerate(unit.messages) if m["type"] == "alert" and m["phase"] == "end"]
        assert alerts()[:2] == [("absent", "start"), ("absent", "end")] and ends[0] < stopped
        assert unit.device.session is None and unit.runner.analyzer.template is None
        assert unit.runner.config.rules == unit.config.rules

        wait_for(lambda: len(bridge.received("event")) >= 2, what="the start and end events at the broker")
        (start, start_payload), (end, _) = bridge.events(unit.device.key)[:2]
        assert (start.kind, start.phase, end.kind, end.phase) == ("absent", "start", "absent", "end")
        assert end.alert_id == start.event_id and end.prev_hash == chain_hash(start_payload)

        write_pair_code(unit.config.data_dir, "ABCDEFGH")  # unpaired again: it takes codes once more
        wait_for(lambda: bridge.received("pair"), LIVE_WAIT, "a pair request after the stop")
    finally:
        stop.set()
        loop.join(30)
    assert not loop.is_alive()


def test_run_session_with_a_link(tmp_path: Path, broker: Mosquitto, bridge: BridgeSide, models_dir: Path,
                                 jpeg: Callable[[np.ndarray], bytes], photo: Photo, scene: Scene,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m edge_app run`` with a [link]: the retained session, signed events, evidence, last heartbeat."""
    frames = [scene("obama2.jpg", i) for i in range(8)] + [scene(None, i) for i in range(20)] + \
        [scene("obama2.jpg", i) for i in range(10)]
    write_scenario(tmp_path / "scenario", frames, fps=5)
    evidence = EvidenceServer([201])
    (tmp_path / "bridge.pub").write_text(public_pem(bridge.key))
    config = tmp_path / "edge.toml"
    config.write_text(
        f'device_id = "{DEVICE}"\ndata_dir = "data"\n[camera]\ntype = "scenario"\npath = "scenario"\n'
        f'[models]\ndir = "{models_dir}"\nthreads = 1\n[analysis]\ncalibration_seconds = 1\n'
        '[rules.absent]\nmin_duration = 1\nend_after = 0.6\nwindow = 0.6\n'
        f'[link]\nbridge_key = "bridge.pub"\nevidence_url = "{evidence.url}"\nstats_every = 1\n'
        f'[link.broker]\nhost = "127.0.0.1"\nport = {broker.port}\nbackoff_min = 0.05\nbackoff_max = 0.3\n')
    bridge.command("session_start", SESSION, retain=True)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        assert run_session(config) == 0
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        evidence.close()
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    alerts = [m for m in printed if m["type"] == "alert"]
    assert [(a["kind"], a["phase"]) for a in alerts] == [("absent", "start"), ("absent", "end")]

    wait_for(lambda: len(bridge.received("event")) == 2, what="both events at the broker")
    key = load_private(tmp_path / "data" / "device.key")
    (start, _), (end, _) = bridge.events(key)
    assert (start.phase, end.phase, end.alert_id) == ("start", "end", start.event_id)
    assert [body for *_, body in evidence.requests] == [Path(alerts[0]["evidence"]["path"]).read_bytes()]
    assert start.evidence == evidence_digest(hashlib.sha256(evidence.requests[0][3]).hexdigest())
    last = decode_stats(bridge.received("stats")[-1])
    assert last["camera"] == "ended" and last["queue"] == 0
    assert json.loads(bridge.received("status")[-1])["state"] == "offline"
    # The retained start arrives within milliseconds of the connection, seconds before the video ends.
    assert [m["session"] for m in printed if m.get("state") == "session_started"] == ["s-1"]
    assert any(decode_stats(p).get("session") == "s-1" for p in bridge.received("stats"))
    page = json.loads((tmp_path / "data" / "page" / "state.json").read_text())  # the unit's own states, too
    assert (page["status"]["pairing"], page["status"]["session"]) == ("in_exam", "s-1")


def load_private(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


@pytest.mark.parametrize("problem", ["bridge key not Ed25519", "device key not a key"])
def test_run_session_refuses_unusable_link_keys(tmp_path: Path, models_dir: Path, problem: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    public = ec.generate_private_key(ec.SECP256R1()).public_key() if problem.startswith("bridge") \
        else Ed25519PrivateKey.generate().public_key()
    (tmp_path / "bridge.pub").write_bytes(public.public_bytes(serialization.Encoding.PEM,
                                                              serialization.PublicFormat.SubjectPublicKeyInfo))
    if problem.startswith("device"):
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "device.key").write_text("garbage\n")
    config = tmp_path / "edge.toml"
    config.write_text(f'device_id = "{DEVICE}"\ndata_dir = "data"\n[camera]\ntype = "scenario"\npath = "x"\n'
                      f'[models]\ndir = "{models_dir}"\n[link]\nbridge_key = "bridge.pub"\n'
                      '[link.broker]\nhost = "127.0.0.1"\n')
    assert run_session(config) == 2
    err = capsys.readouterr().err
    assert "error: link:" in err
    assert ("not an Ed25519 public key" if problem.startswith("bridge") else "cannot be read as a PEM") in err


def test_the_link_section_paths_and_overrides(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "bridge.pub").write_text(public_pem(Ed25519PrivateKey.generate()))
    (tmp_path / "ca.pem").write_text("x\n")
    config = tmp_path / "edge.toml"
    config.write_text('device_id = "unit-7"\ndata_dir = "data"\n[camera]\ntype = "scenario"\npath = "x"\n'
                      '[link]\nbridge_key = "keys/bridge.pub"\noutbox = "state/outbox.db"\n'
                      '[link.broker]\nhost = "broker.example"\ntls = true\nca_file = "ca.pem"\n')
    loaded = load(config, environ={"INVIGIL_LINK__BROKER__PORT": "8883", "INVIGIL_LINK__STATS_EVERY": "30"})
    link = loaded.link
    assert link is not None and link.broker.port == 8883 and link.stats_every == 30
    assert link.bridge_key == tmp_path / "keys" / "bridge.pub" and link.broker.ca_file == tmp_path / "ca.pem"
    assert link.under(loaded.data_dir, link.outbox) == tmp_path / "data" / "state" / "outbox.db"
    assert link.under(loaded.data_dir, link.key_file) == tmp_path / "data" / "device.key"
    assert load(config, environ={"INVIGIL_LINK": "null"}).link is None  # a standalone unit
    for environ, message in (({"INVIGIL_LINK__BRIDGE_KEY": "missing.pub"}, "link.bridge_key"),
                             ({"INVIGIL_LINK__EVIDENCE_URL": "ftp://bridge"}, "link.evidence_url"),
                             ({"INVIGIL_LINK__BROKER__PASSWORD": "secret"}, "link.broker.password")):
        with pytest.raises(ConfigError, match=message):
            load(config, environ=environ)


def test_refused_credentials_become_local_status_once_until_accepted_again(
        tmp_path: Path, locked_broker: tuple[Mosquitto, str], bridge_key: Ed25519PrivateKey) -> None:
    """A revoked unit (its broker account gone, so its password refused) says why, once, through emit_local:
    the page and the LED follow these messages (edge_app.run)."""
    broker, password = locked_broker
    (tmp_path / "bridge.pub").write_text(public_pem(bridge_key))
    (tmp_path / "mqtt.password").write_text("no longer valid\n")
    config = parse({"device_id": DEVICE, "data_dir": str(tmp_path / "data"),
                    "camera": {"type": "scenario", "path": str(tmp_path)},
                    "link": {"broker": {"host": "127.0.0.1", "port": broker.port, "username": DEVICE,
                                        "password_file": str(tmp_path / "mqtt.password"), "backoff_min": 0.05,
                                        "backoff_max": 0.1, "refused_backoff_max": 0.2},
                             "bridge_key": str(tmp_path / "bridge.pub"), "stats_every": 5}}, environ={})
    assert config.link is not None
    device = ConnectedDevice(config, config.link, enroll=lambda _photo: None)
    messages: list[dict[str, Any]] = []
    device.emit_local = messages.append
    tracker = StateTracker(connected=lambda: device.mqtt.connected)
    tracker.update({"type": "calibration", "usable": True})

    def credentials() -> list[dict[str, Any]]:
        return [m for m in list(messages) if str(m.get("state", "")).startswith("credentials_")]

    device.start()
    try:
        wait_for(lambda: credentials(), what="the refusal as a local status")
        for message in credentials():
            tracker.update(message)
        assert tracker.state() is State.FAULT
        time.sleep(1.0)  # several refused retries (0.1 to 0.2 s apart): still one message
        assert credentials() == [{"type": "status", "state": "credentials_refused", "reason": "Not authorized"}]
        (tmp_path / "mqtt.password").write_text(password + "\n")  # enrolled again
        wait_for(lambda: len(credentials()) == 2, what="the accepted connection as a local status")
        assert credentials()[1] == {"type": "status", "state": "credentials_accepted"}
        assert tracker.update(credentials()[1]) is State.READY and device.mqtt.connected
    finally:
        device.stop()
