"""The protocol end to end on a 3-node NATS cluster: a unit's real link (MQTT 3.1.1, its outbox and receipts) on
one node, the bridge in NATS mode (``[broker] engine = "nats"``: the JetStream consumer and the JetStream
publisher of cloud_bridge/nats_engine.py), and an MQTT 3.1.1 proctor on another node.

The unit pairs by sending its request over MQTT; the bridge's signed ``pair`` reply and ``session_start``
come back through NATS to the unit's persistent session. The unit then raises alerts: every one is stored
once, the bridge's signed receipts empty the unit's outbox, and each alert reaches the proctor. Last, the unit
goes away, the session ends, and once JetStream acknowledged the ``session_stop`` (the bridge's outbox marks it
sent) the unit coming back on a third node receives it from its persistent session.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from sqlalchemy import func, select

from cloud_bridge.app import Bridge
from cloud_bridge.config import parse
from cloud_bridge.store.models import EventRow
from edge_app.link.events import EventWriter
from edge_app.link.mqtt import MqttLink, MqttLinkConfig
from edge_app.link.outbox import Outbox
from edge_app.link.receipts import Receipts
from edge_app.protocol import proctor_topic
from edge_app.protocol.commands import seal
from tests.bridge.parts import DEVICE_KEY, PHOTO, register
from tests.mosquitto import wait_for
from tools.scale.nats_cluster import NatsCluster

DEVICE, EXAM, ALERTS = "unit-n1", "exam-nats", 40
log = logging.getLogger(__name__)


class Proctor:
    """An MQTT 3.1.1 subscriber (persistent session) to the exam's alerts topic."""

    def __init__(self, port: int) -> None:
        self.lock, self.alerts = threading.Lock(), list[dict[str, object]]()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="proctor-1",
                                  protocol=MQTTProtocolVersion.MQTTv311, clean_session=False)
        subscribed = threading.Event()
        self.client.on_connect = lambda c, *_: c.subscribe(proctor_topic(EXAM), qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, 30)
        self.client.loop_start()
        wait_for(subscribed.is_set, 20, "the proctor's subscription")

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.alerts.append(json.loads(message.payload))

    def received(self) -> list[dict[str, object]]:
        with self.lock:
            return list(self.alerts)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Commands:
    def __init__(self) -> None:
        self.lock, self.seen = threading.Lock(), list[str]()

    def __call__(self, name: str, _payload: bytes) -> None:
        with self.lock:
            self.seen.append(name)

    def names(self) -> list[str]:
        with self.lock:
            return list(self.seen)


def stored(bridge: Bridge) -> tuple[int, int]:
    with bridge.store.session() as session:
        rows = session.execute(select(func.count(), func.count(func.distinct(EventRow.event_id)))
                               .where(EventRow.device_id == DEVICE)).one()
    return int(rows[0]), int(rows[1])


def test_a_unit_pairs_stores_is_receipted_and_alerts_the_proctor_through_nats(
        cluster: NatsCluster, tmp_path: Path) -> None:
    config = parse({"database_url": f"sqlite:///{tmp_path / 'bridge.db'}", "key_file": str(tmp_path / "bridge.key"),
                    "mqtt": {"host": "127.0.0.1", "port": cluster.nodes[0].mqtt},
                    "broker": {"engine": "nats", "nats_servers": cluster.urls(), "nats_workers": 2}}, environ={})
    bridge = Bridge(config, http=False)
    register(bridge.store, DEVICE, DEVICE_KEY)
    outbox = Outbox(tmp_path / "outbox.db")
    receipts = Receipts(outbox, bridge.key.public_key(), DEVICE, 2.0)
    commands = Commands()
    link = MqttLink(MqttLinkConfig(host="127.0.0.1", port=cluster.nodes[0].mqtt, protocol="3.1.1", keepalive=10,
                                   backoff_min=0.1, backoff_max=1.0, receipt_timeout=2.0),
                    DEVICE, outbox, on_command=commands, receipts=receipts)
    proctor: Proctor | None = None
    bridge.start()
    try:
        assert bridge.wait_connected(30)
        link.start()
        wait_for(lambda: link.subscribed, 30, "the unit's 3.1.1 link to subscribe")
        proctor = Proctor(cluster.nodes[1].mqtt)  # another node than the unit's
        waiting = bridge.services.sessions.create(EXAM, "cand-7", PHOTO)
        link.send("pair", seal("pair_request", {"d": DEVICE, "code": waiting.pairing_code, "via": "qr"}, DEVICE_KEY,
                               int(time.time() * 1000)), qos=1)
        wait_for(lambda: {"pair", "session_start"} <= set(commands.names()), 30,
                 "the signed pair reply and session_start at the unit, through NATS")
        writer = EventWriter(DEVICE, DEVICE_KEY, outbox, (640, 480))
        started = time.monotonic()
        for index in range(ALERTS):
            writer.write({"type": "alert", "id": f"a{index}", "kind": "phone", "phase": "start",
                          "severity": "warning", "confidence": 0.9})
            link.wake()
        wait_for(lambda: stored(bridge)[0] >= ALERTS, 30, "the events stored")
        stored_at = time.monotonic()
        wait_for(lambda: outbox.count() == 0, 30, "the unit's outbox to empty on the bridge's receipts")
        receipted_at = time.monotonic()
        wait_for(lambda: len(proctor.received()) >= ALERTS, 30, "the alerts at the proctor on another node")
        log.warning("NATS e2e: %d alerts stored in %.2f s, receipted in %.2f s, at the proctor in %.2f s",
                    ALERTS, stored_at - started, receipted_at - started, time.monotonic() - started)
        assert stored(bridge) == (ALERTS, ALERTS)  # each event once
        assert receipts.stored == ALERTS
        alerts = proctor.received()
        assert {a["session"] for a in alerts} == {waiting.session_id}
        assert len({a["id"] for a in alerts}) == ALERTS  # every alert, none missing

        assert link.stop(5)  # the unit goes away; its persistent session stays at the gateway
        commands_service = bridge.services.commands
        assert commands_service is not None
        bridge.services.sessions.end(waiting.session_id, also=commands_service.ended)
        wait_for(lambda: bridge.services.outbox.pending() == 0, 30, "JetStream to acknowledge the session_stop")
        link = MqttLink(link.config.model_copy(update={"port": cluster.nodes[2].mqtt}), DEVICE, outbox,
                        on_command=commands, receipts=receipts)  # back, on a third node
        link.start()
        wait_for(lambda: "session_stop" in commands.names(), 30, "the session_stop sent while the unit was away")
    finally:
        link.stop(5)
        if proctor is not None:
            proctor.close()
        bridge.stop()
        outbox.close()
