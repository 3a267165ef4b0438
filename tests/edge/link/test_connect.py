"""The link's MQTT version option (edge_app/link/connect.py): MQTT 5 by default, 3.1.1 for a broker that speaks
only that (NATS's gateway). Against a real Mosquitto, a 3.1.1 link publishes its events, receives commands,
keeps a persistent session (commands sent while it is away arrive on its return) and leaves ``offline`` behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from paho.mqtt.enums import MQTTProtocolVersion
from pydantic import ValidationError

from edge_app.link.connect import link_client
from edge_app.link.mqtt import MqttLink, MqttLinkConfig
from edge_app.link.outbox import Outbox
from edge_app.protocol import device_topic
from tests.edge.link.test_mqtt import Observer, put_events, retained_status
from tests.edge.link.test_mqtt_commands import Bridge, Commands
from tests.mosquitto import Mosquitto, wait_for

DEVICE = "unit-7"  # the device tests.edge.link.test_mqtt.Observer watches


def config(port: int = 1883, **fields: object) -> MqttLinkConfig:
    return MqttLinkConfig(host="127.0.0.1", port=port, backoff_min=0.05, backoff_max=0.3, **fields)  # type: ignore[arg-type]


def test_mqtt_5_by_default_and_3_1_1_on_request() -> None:
    assert config().protocol == "5"
    status = device_topic(DEVICE, "status")
    assert link_client(config(), DEVICE, status).protocol == MQTTProtocolVersion.MQTTv5
    assert link_client(config(protocol="3.1.1"), DEVICE, status).protocol == MQTTProtocolVersion.MQTTv311
    with pytest.raises(ValidationError, match=r"'5' or '3\.1\.1'"):
        config(protocol="3.1")
    with pytest.raises(ValidationError, match="Input should be"):
        config(protocol=5)  # a number is not a version name


def connected_as(broker: Mosquitto) -> list[str]:
    """Mosquitto's notice for each connection of DEVICE: ``(p<version>, c<clean>, k<keepalive>)``."""
    text = Path(broker.log).read_text(errors="replace")
    return [line.split(f"as {DEVICE} ", 1)[1].split(")", 1)[0] + ")" for line in text.splitlines()
            if f"as {DEVICE} (" in line]


def test_a_3_1_1_link_publishes_receives_commands_and_keeps_its_session(
        broker: Mosquitto, outbox: Outbox, links: list[MqttLink]) -> None:
    observer, bridge, commands = Observer(broker.port, "observer"), Bridge(broker.port), Commands()
    try:
        link = MqttLink(config(broker.port, protocol="3.1.1"), DEVICE, outbox, on_command=commands)
        links.append(link)
        ids = put_events(outbox, 5)
        link.start()
        wait_for(lambda: link.subscribed and outbox.count() == 0 and len(observer.events()) == len(ids),
                 what="the events acknowledged and at the subscriber")
        assert observer.events() == ids  # oldest first, at QoS 1, on the same topic as in MQTT 5
        assert connected_as(broker) == ["(p2, c0, k30)"]  # MQTT 3.1.1 (p2), clean session off (c0)
        bridge.command("thresholds", b'{"rules":{}}')
        wait_for(lambda: commands.names() == ["thresholds"], what="the command at the 3.1.1 link")

        assert link.stop(5)
        assert retained_status(broker.port) == ("offline", True)
        bridge.command("session_stop", b"while away")  # queued in the unit's persistent session
        again = MqttLink(config(broker.port, protocol="3.1.1"), DEVICE, outbox, on_command=commands)
        links.append(again)
        again.start()
        wait_for(lambda: "session_stop" in commands.names(), what="the command sent while the unit was away")
        assert commands.payloads("session_stop") == [b"while away"]
    finally:
        observer.close()
        bridge.close()
