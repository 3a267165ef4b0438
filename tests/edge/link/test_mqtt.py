"""The MQTT link against a real Mosquitto, observed by a real paho subscriber: PUBACK-only deletes, broker
outages that lose nothing, the retained birth status, the last will on a lost connection, a clean stop, refused
credentials reported once and retried less often."""

from __future__ import annotations

import getpass
import itertools
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import ValidationError

from cloud_bridge.broker import BrokerUser, hash_password, new_password, write_broker_files
from edge_app.link.mqtt import MqttLink, MqttLinkConfig, backoff_delay, status_payload
from edge_app.link.outbox import Outbox
from edge_app.protocol import ProtocolError, device_topic, new_event_id
from tests.mosquitto import LinkCutter, Mosquitto, free_port, wait_for

DEVICE = "unit-7"
EVENTS = device_topic(DEVICE, "event")
STATUS = device_topic(DEVICE, "status")


class Observer:
    """A paho subscriber to every topic of the device; ``persistent`` keeps its QoS 1 queue across restarts."""

    def __init__(self, port: int, name: str, persistent: bool = False) -> None:
        self._lock = threading.Lock()
        self.messages: list[tuple[str, bytes, bool]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=MQTTProtocolVersion.MQTTv5)
        self.client.on_connect = lambda c, *_: c.subscribe(device_topic(DEVICE, "#"), qos=1)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.reconnect_delay_set(0.1, 0.5)
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 600 if persistent else 0
        self.client.connect("127.0.0.1", port, 30, clean_start=not persistent, properties=properties)
        self.client.loop_start()
        wait_for(subscribed.is_set, what=f"{name} to subscribe")

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, message.payload, bool(message.retain)))

    def events(self) -> list[str]:
        with self._lock:
            return [json.loads(p)["id"] for t, p, _ in self.messages if t == EVENTS]

    def statuses(self) -> list[tuple[str, bool]]:
        """(state, retained) of every status message, in arrival order."""
        with self._lock:
            return [(json.loads(p)["state"], r) for t, p, r in self.messages if t == STATUS]

    def last_status(self) -> dict[str, object]:
        with self._lock:
            return next(json.loads(p) for t, p, _ in reversed(self.messages) if t == STATUS)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained_status(port: int) -> tuple[str, bool]:
    """What a newcomer sees on the status topic: the retained message's state and retain flag."""
    observer = Observer(port, "newcomer")
    try:
        wait_for(lambda: observer.statuses(), what="the retained status")
        return observer.statuses()[0]
    finally:
        observer.close()


def put_events(outbox: Outbox, count: int) -> list[str]:
    ids = [new_event_id() for _ in range(count)]
    for event_id in ids:
        outbox.put_raw(event_id, EVENTS, json.dumps({"id": event_id}).encode())
    return ids


def start_link(links: list[MqttLink], port: int, outbox: Outbox, inflight_max: int = 20,
               will_delay: int = 0) -> MqttLink:
    config = MqttLinkConfig(host="127.0.0.1", port=port, backoff_min=0.05, backoff_max=0.3, inflight_max=inflight_max,
                            will_delay=will_delay)
    link = MqttLink(config, DEVICE, outbox)
    links.append(link)
    link.start()
    return link


def test_events_are_deleted_only_on_puback_and_sent_oldest_first(
        broker: Mosquitto, outbox: Outbox, links: list[MqttLink]) -> None:
    cutter = LinkCutter(broker.port)
    observer = Observer(broker.port, "observer")
    try:
        link = start_link(links, cutter.port, outbox, inflight_max=3)
        wait_for(lambda: ("online", False) in observer.statuses(), what="the birth status")  # so: connected
        cutter.hold_replies = True  # the broker gets the events, the link never gets the PUBACKs
        ids = put_events(outbox, 5)
        link.wake()
        wait_for(lambda: len(observer.events()) == 3, what="the first three events at the subscriber")
        assert observer.events() == ids[:3]  # oldest first, and no more than inflight_max unacknowledged
        assert link.sent == 3 and link.acked == 0
        assert outbox.count() == 5  # delivered to the subscriber, yet kept: no PUBACK reached the link

        cutter.hold_replies = False
        cutter.cut()  # the connection dies; the link reconnects and sends everything not acknowledged again
        wait_for(lambda: outbox.count() == 0, what="the outbox to empty")
        wait_for(lambda: set(observer.events()) == set(ids), what="all five events at the subscriber")
        assert link.acked == 5 and link.sent >= 5
    finally:
        observer.close()
        cutter.close()


def test_broker_outage_loses_nothing(broker: Mosquitto, outbox: Outbox, links: list[MqttLink]) -> None:
    observer = Observer(broker.port, "observer", persistent=True)
    try:
        link = start_link(links, broker.port, outbox)
        before = put_events(outbox, 3)
        link.wake()
        wait_for(lambda: outbox.count() == 0, what="the first events to be acknowledged")

        broker.stop()
        wait_for(lambda: not link.connected, what="the link to notice the broker is gone")
        during = put_events(outbox, 5)
        link.wake()
        assert outbox.count() == 5 and link.acked == 3  # nothing dropped or acknowledged while disconnected

        broker.start()
        wait_for(lambda: outbox.count() == 0, what="the outbox to empty after the restart")
        wait_for(lambda: set(before + during) <= set(observer.events()), what="every event at the subscriber")
        assert link.connected and link.acked == 8
    finally:
        observer.close()


def test_birth_is_retained_last_will_on_lost_connection_offline_on_stop(
        broker: Mosquitto, outbox: Outbox, links: list[MqttLink]) -> None:
    cutter = LinkCutter(broker.port)
    observer = Observer(broker.port, "observer")
    try:
        link = start_link(links, cutter.port, outbox)
        wait_for(lambda: link.connected, what="the link to connect")
        assert retained_status(broker.port) == ("online", True)

        cutter.cut()  # no DISCONNECT: the broker publishes the last will
        wait_for(lambda: ("offline", False) in observer.statuses(), what="the last will")
        wait_for(lambda: observer.statuses()[-1] == ("online", False), what="the birth status after reconnecting")
        assert retained_status(broker.port) == ("online", True)

        assert link.stop(5)
        assert not link.connected
        assert retained_status(broker.port) == ("offline", True)
        wait_for(lambda: observer.statuses()[-1] == ("offline", False), what="offline at the subscriber")
        assert "t" in observer.last_status()  # published by stop(); the last will has no time
    finally:
        observer.close()
        cutter.close()


def test_a_reconnect_within_the_will_delay_raises_no_offline_status(
        broker: Mosquitto, outbox: Outbox, links: list[MqttLink]) -> None:
    cutter = LinkCutter(broker.port)
    observer = Observer(broker.port, "observer")
    try:
        link = start_link(links, cutter.port, outbox, will_delay=30)
        wait_for(lambda: link.connected, what="the link to connect")
        wait_for(lambda: observer.statuses() == [("online", False)], what="the birth")
        cutter.cut()  # no DISCONNECT: without the delay the broker would publish the last will now
        wait_for(lambda: observer.statuses().count(("online", False)) == 2, what="the birth after reconnecting")
        put_events(outbox, 1)
        link.wake()
        wait_for(lambda: outbox.count() == 0, what="an event after the reconnect")
        assert ("offline", False) not in observer.statuses()  # the will waited, and the unit was back in time
    finally:
        observer.close()
        cutter.close()


@pytest.fixture
def locked_broker(tmp_path: Path) -> Iterator[tuple[Mosquitto, str]]:
    """A broker as the bridge configures it (accounts of the dynamic-security plugin), with this unit's account,
    and the unit's password."""
    password = new_password()
    files = write_broker_files(tmp_path / "locked", [BrokerUser(DEVICE, hash_password(password), "device")],
                               "127.0.0.1", free_port(), user=getpass.getuser())
    server = Mosquitto(tmp_path / "locked", conf_text=files.conf.read_text())
    server.start()
    yield server, password
    server.kill()


def attempt_times(cutter: LinkCutter, count: int, seconds: float = 20.0) -> list[float]:
    """When the next ``count`` connection attempts reached the relay (monotonic, to within a poll)."""
    times: list[float] = []
    seen, deadline = cutter.accepted, time.monotonic() + seconds
    while len(times) < count:
        assert time.monotonic() < deadline, f"only {len(times)} of {count} connection attempts"
        if cutter.accepted > seen:
            seen = cutter.accepted
            times.append(time.monotonic())
        time.sleep(0.005)
    return times


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_refused_credentials_are_reported_once_retried_less_often_and_cleared_on_connecting(
        locked_broker: tuple[Mosquitto, str], outbox: Outbox, links: list[MqttLink], tmp_path: Path,
        caplog: pytest.LogCaptureFixture, protocol: str) -> None:
    broker, password = locked_broker
    password_file = tmp_path / "mqtt-password"
    password_file.write_text("not the password\n")  # as a revoked unit: every attempt is refused
    cutter = LinkCutter(broker.port)  # counts the link's connection attempts
    reports: list[str | None] = []
    config = MqttLinkConfig.model_validate({
        "host": "127.0.0.1", "port": cutter.port, "username": DEVICE, "password_file": password_file,
        "protocol": protocol, "backoff_min": 0.05, "backoff_max": 0.2, "refused_backoff_max": 0.8})
    link = MqttLink(config, DEVICE, outbox, on_refused=reports.append)
    links.append(link)
    try:
        with caplog.at_level(logging.INFO, logger="edge_app.link"):
            link.start()
            wait_for(lambda: reports, what="the refusal reported")
            times = attempt_times(cutter, 5)
            # waits double from backoff_max (0.2) to refused_backoff_max (0.8), each at least half its cap (0.4
            # from the third): well above anything the ordinary backoff (at most 0.2 s) would wait
            gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
            assert gaps[-1] >= 0.3 and gaps[-2] >= 0.3, gaps
            assert reports == ["Not authorized"] and link.refused == "Not authorized" and not link.connected
            refusals = [r.getMessage() for r in caplog.records if "broker refused the connection" in r.getMessage()]
            assert len(refusals) == 1, refusals  # once, not at every retry
            assert "this unit's credentials" in refusals[0]

            password_file.write_text(password + "\n")  # re-enrolled: the next attempt is taken
            wait_for(lambda: link.connected, what="the link to connect with the right password")
        assert reports == ["Not authorized", None] and link.refused is None
        assert "the broker accepts the connection again" in caplog.text
        put_events(outbox, 1)
        link.wake()
        wait_for(lambda: outbox.count() == 0, what="an event once accepted")
    finally:
        link.stop(5)
        cutter.close()


def test_stop_is_clean_when_the_broker_is_unreachable(outbox: Outbox) -> None:
    link = start_link([], free_port(), outbox)
    put_events(outbox, 2)
    link.wake()
    assert link.stop(3)
    assert not link.connected and link.sent == 0 and outbox.count() == 2


def test_bad_device_id_is_refused(outbox: Outbox) -> None:
    with pytest.raises(ProtocolError, match="device id"):
        MqttLink(MqttLinkConfig(host="127.0.0.1"), "Unit 7", outbox)


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_delay(n, 0.5, 30) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert backoff_delay(10_000, 0.5, 30) == 30


def test_status_payload_is_compact_json() -> None:
    assert status_payload("online", 1700000000000) == b'{"state":"online","t":1700000000000}'
    assert json.loads(status_payload("offline")) == {"state": "offline"}


def test_tls_config_takes_existing_files(tmp_path: Path) -> None:
    for name in ("ca.pem", "cert.pem", "key.pem", "password"):
        (tmp_path / name).write_text("x\n")
    config = MqttLinkConfig(host="broker.example", port=8883, tls=True, ca_file=tmp_path / "ca.pem",
                            cert_file=tmp_path / "cert.pem", key_file=tmp_path / "key.pem", username="unit-7",
                            password_file=tmp_path / "password")
    assert config.tls and config.keepalive == 30 and config.inflight_max == 20


@pytest.mark.parametrize("fields, message", [
    ({"ca_file": "ca.pem"}, "ca_file set but tls is false"),
    ({"tls": True, "cert_file": "cert.pem"}, "cert_file and key_file go together"),
    ({"tls": True, "ca_file": "missing.pem"}, "missing.pem is not a file"),
    ({"password_file": "password"}, "password_file needs username"),
    ({"backoff_min": 5, "backoff_max": 1}, "backoff_min 5.0 is above backoff_max 1.0"),
    ({"password": "secret"}, "Extra inputs are not permitted"),
    ({"port": 0}, "greater than or equal to 1"),
])
def test_bad_config_is_refused_with_the_reason(tmp_path: Path, fields: dict[str, object], message: str) -> None:
    for name in ("ca.pem", "cert.pem", "password"):
        (tmp_path / name).write_text("x\n")
    resolved = {k: tmp_path / v if k.endswith("_file") else v for k, v in fields.items()}
    with pytest.raises(ValidationError, match=message):
        MqttLinkConfig(host="127.0.0.1", **resolved)  # type: ignore[arg-type]
