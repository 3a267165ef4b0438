"""What the bridge's MQTT consumer path gets from NATS's MQTT gateway (nats-server 2.9), found by trying it.

Each fact here decided the design in docs/scale.md: the bridge's MQTT 5 clients are refused, ``$share``
is not a shared subscription (a literal topic nothing is published on), while retained messages, last
wills and QoS 1 work, and a stream on the device subjects captures what units publish over MQTT.
"""

from __future__ import annotations

import asyncio
import threading

import nats
from paho.mqtt.reasoncodes import ReasonCode

from cloud_bridge.config import MqttConfig
from cloud_bridge.jetstream import STREAM, ensure_stream
from cloud_bridge.mqtt import Consumer
from edge_app.protocol.transport import new_client
from tools.scale.mqtt311 import Client, Will
from tools.scale.nats_cluster import NatsCluster

TIMEOUT = 10.0


def test_the_bridges_mqtt5_consumer_is_refused(cluster: NatsCluster) -> None:
    config = MqttConfig(host="127.0.0.1", port=cluster.nodes[0].mqtt)  # type: ignore[call-arg]
    answered, reasons = threading.Event(), list[ReasonCode]()
    client = new_client(config, "invigil-bridge-0")  # the client Consumer and Publisher are built on

    def on_connect(_c: object, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        reasons.append(reason)
        answered.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", config.port)
    client.loop_start()
    try:
        assert answered.wait(TIMEOUT)
    finally:
        client.disconnect()
        client.loop_stop()
    assert reasons[0].is_failure and "protocol version" in str(reasons[0]).lower()
    assert Consumer.__module__ == "cloud_bridge.mqtt"  # the consumer uses that same MQTT 5 client


async def gateway(cluster: NatsCluster) -> dict[str, list[tuple[str, bytes, bool]]]:
    got: dict[str, list[tuple[str, bytes, bool]]] = {"shared": [], "plain": [], "late": []}
    node0, node1 = ("127.0.0.1", cluster.nodes[0].mqtt), ("127.0.0.1", cluster.nodes[1].mqtt)
    shared = await Client.connect(*node1, "bridge-shared", on_message=lambda *m: got["shared"].append(m))
    plain = await Client.connect(*node1, "bridge-plain", on_message=lambda *m: got["plain"].append(m))
    assert await shared.subscribe(["$share/bridge/invigil/v1/dev/+/event", "invigil/v1/marker"]) == 1
    assert await plain.subscribe(["invigil/v1/dev/+/event", "invigil/v1/dev/+/status", "invigil/v1/marker"]) == 1
    unit = await Client.connect(*node0, "unit-a", will=Will("invigil/v1/dev/unit-a/status", b"offline"))
    await unit.publish("invigil/v1/dev/unit-a/status", b"online", retain=True)
    await unit.publish("invigil/v1/dev/unit-a/event", b"event-1")
    await unit.close(graceful=False)  # a lost unit: its will goes out
    writer = await Client.connect(*node0, "marker")
    await writer.publish("invigil/v1/marker", b"end")
    for _ in range(int(TIMEOUT / 0.05)):
        if any(m[0] == "invigil/v1/marker" for m in got["shared"]) and len(got["plain"]) >= 4:
            break
        await asyncio.sleep(0.05)
    late = await Client.connect(*node1, "late", on_message=lambda *m: got["late"].append(m))
    await late.subscribe(["invigil/v1/dev/+/status"])
    for _ in range(int(TIMEOUT / 0.05)):
        if got["late"]:
            break
        await asyncio.sleep(0.05)
    for client in (shared, plain, writer, late):
        await client.close()
    return got


def test_share_is_not_shared_but_retained_and_wills_work(cluster: NatsCluster) -> None:
    got = asyncio.run(gateway(cluster))
    assert [m[0] for m in got["shared"]] == ["invigil/v1/marker"]  # the event published before it never came
    plain = [(topic, payload) for topic, payload, _r in got["plain"]]
    assert ("invigil/v1/dev/unit-a/event", b"event-1") in plain
    assert ("invigil/v1/dev/unit-a/status", b"offline") in plain  # the last will
    assert got["late"] == [("invigil/v1/dev/unit-a/status", b"offline", True)]  # retained (the will's retain)


async def captured(cluster: NatsCluster) -> list[bytes]:
    connection = await nats.connect(servers=cluster.urls())
    try:
        js = connection.jetstream()
        await ensure_stream(js)
        unit = await Client.connect("127.0.0.1", cluster.nodes[2].mqtt, "unit-b")
        for n in range(3):
            await unit.publish("invigil/v1/dev/unit-b/event", f"e{n}".encode())
        await unit.close()
        sub = await js.pull_subscribe("invigil.v1.dev.*.event", durable="probe", stream=STREAM)
        messages = await sub.fetch(3, timeout=TIMEOUT)
        return [m.data for m in messages]
    finally:
        await connection.close()


def test_a_stream_captures_what_units_publish_over_mqtt(cluster: NatsCluster) -> None:
    assert asyncio.run(captured(cluster)) == [b"e0", b"e1", b"e2"]  # the raw payloads, in order
