"""Accounts, client ids and rights in the dynamic-security plugin: the rendered file by table, then what a real
Mosquitto grants with it (a unit cannot take another's client id, nor join the bridge's share group)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloud_bridge.broker import BrokerUser, hash_password
from cloud_bridge.config import MqttConfig
from cloud_bridge.dynsec import render_dynsec, role_acls
from cloud_bridge.mqtt import Consumer, subscriptions
from edge_app.protocol import device_topic, proctor_topic
from edge_app.protocol.commands import MAX_COMMAND_BYTES
from tests.bridge.broker_site import (
    BRIDGE_PREFIX,
    DEV,
    GRANTED_QOS1,
    NO_SUBSCRIBERS,
    NOT_AUTHORIZED,
    Peer,
    Site,
    running_site,
)
from tests.mosquitto import wait_for
from tests.need import need

HASH = hash_password("x", salt=b"0123456789ab")
SHARE = f"$share/bridge/{DEV}/+/event"


def acls(user: BrokerUser) -> set[tuple[str, str]]:
    return {(acl["acltype"], acl["topic"]) for acl in role_acls(user) if acl["allow"]}


@pytest.mark.parametrize("user, expected", [
    (BrokerUser("unit-7", HASH, "device"),
     {("publishClientSend", f"{DEV}/unit-7/{leaf}") for leaf in ("event", "pair", "stats", "status")}
     | {(kind, f"{DEV}/unit-7/cmd/#") for kind in ("subscribePattern", "publishClientReceive", "unsubscribePattern")}),
    (BrokerUser("bridge", HASH, "bridge"),
     {(kind, "invigil/v1/#") for kind in ("publishClientSend", "subscribePattern", "publishClientReceive",
                                           "unsubscribePattern")}
     | {(kind, "$share/bridge/invigil/v1/#") for kind in ("subscribePattern", "unsubscribePattern")}),
    (BrokerUser("desk-1", HASH, "proctor"),
     {(kind, "invigil/v1/proctor/#") for kind in ("subscribePattern", "publishClientReceive", "unsubscribePattern")}),
])
def test_role_acls(user: BrokerUser, expected: set[tuple[str, str]]) -> None:
    assert acls(user) == expected


def test_render_dynsec_binds_client_ids_and_denies_by_default() -> None:
    users = [BrokerUser("bridge", HASH, "bridge"), BrokerUser("desk-1", HASH, "proctor"),
             BrokerUser("unit-7", HASH, "device")]
    config: dict[str, Any] = json.loads(render_dynsec(users))
    assert config["defaultACLAccess"] == {"publishClientSend": False, "publishClientReceive": False,
                                          "subscribe": False, "unsubscribe": False}
    clients = {c["username"]: c for c in config["clients"]}
    assert {name: c.get("clientid") for name, c in clients.items()} == {"bridge": None, "desk-1": "desk-1",
                                                                         "unit-7": "unit-7"}
    _, _, iterations, salt, digest = HASH.split("$")
    assert {(c["salt"], c["password"], c["iterations"]) for c in clients.values()} == {(salt, digest, int(iterations))}
    assert {c["roles"][0]["rolename"] for c in clients.values()} == {r["rolename"] for r in config["roles"]}


@pytest.mark.parametrize("users, prefixes, message", [
    ([BrokerUser("invigil-bridge-0", HASH, "proctor")], [BRIDGE_PREFIX], "named like a bridge client id"),
    ([BrokerUser("br-1", HASH, "device")], ["br"], "named like a bridge client id"),
    ([BrokerUser("unit-7", "$7$101$MDEyMzQ1Njc4OWFi$AAAA", "device")], [], "64-byte digest"),
    ([BrokerUser("unit-7", "$7$101$MDEy$" + HASH.split("$")[4], "device")], [], "12-byte salt"),
])
def test_render_dynsec_refuses(users: list[BrokerUser], prefixes: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render_dynsec(users, prefixes)


def test_a_bridge_named_like_its_prefix_is_fine() -> None:
    assert "invigil-bridge-0" in render_dynsec([BrokerUser("invigil-bridge-0", HASH, "bridge")], [BRIDGE_PREFIX])


# -- a real Mosquitto with the generated files ------------------------------------------------------------

@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    yield from running_site(tmp_path / "broker")


def test_a_device_connects_with_its_password_others_are_refused(site: Site) -> None:
    assert site.peer("unit-a").connect().value == 0
    assert site.peer("unit-a", password="wrong", client_id="x1").connect().value == NOT_AUTHORIZED
    assert site.peer("unit-a", password=site.passwords["unit-b"]).connect().value == NOT_AUTHORIZED
    assert site.peer("nobody", password="x").connect().value == NOT_AUTHORIZED
    anonymous = Peer(site.port, "anonymous", None)
    site.peers.append(anonymous)
    assert anonymous.connect().value == NOT_AUTHORIZED


def test_a_mosquitto_passwd_hash_logs_in(site: Site, tmp_path: Path) -> None:
    tool = shutil.which("mosquitto_passwd")
    need(tool is not None, "mosquitto_passwd is not installed: apt-get install -y mosquitto")
    assert tool is not None
    subprocess.run([tool, "-c", "-b", str(tmp_path / "pw"), "unit-c", "its-password"], check=True, capture_output=True)
    site.users.append(BrokerUser("unit-c", (tmp_path / "pw").read_text().strip().split(":", 1)[1], "device"))
    site.write()
    site.broker.restart()  # the plugin reads its accounts at start
    assert site.peer("unit-c", password="its-password").connect().value == 0


def test_a_unit_cannot_take_another_units_client_id(site: Site) -> None:
    unit_b = site.connected("unit-b")
    assert unit_b.subscribe(f"{DEV}/unit-b/cmd/#") == [GRANTED_QOS1]
    bridge = site.connected("bridge", client_id=f"{BRIDGE_PREFIX}-pub")
    for clean_start in (True, False):  # neither a fresh nor a resumed session
        thief = site.peer("unit-a", client_id="unit-b")
        assert thief.connect(clean_start).value == NOT_AUTHORIZED
    assert bridge.publish(device_topic("unit-b", "cmd/session_stop"), b"stop") == 0
    wait_for(lambda: unit_b.payloads(device_topic("unit-b", "cmd/session_stop")) == [b"stop"],
             what="unit-b's command, still delivered to unit-b")
    assert unit_b.client.is_connected() and unit_b.disconnects == []  # never taken over


def test_a_unit_cannot_take_a_bridge_client_id(site: Site) -> None:
    worker = site.connected("bridge", client_id=f"{BRIDGE_PREFIX}-0", clean_start=False)
    assert worker.subscribe(*subscriptions(0)) == [GRANTED_QOS1] * 4
    for client_id in (f"{BRIDGE_PREFIX}-0", f"{BRIDGE_PREFIX}-1", f"{BRIDGE_PREFIX}-pub"):
        for clean_start in (True, False):
            assert site.peer("unit-b", client_id=client_id).connect(clean_start).value == NOT_AUTHORIZED
            assert site.peer("proctor", client_id=client_id).connect(clean_start).value == NOT_AUTHORIZED
    unit_a = site.connected("unit-a")
    for n in range(20):
        assert unit_a.publish(device_topic("unit-a", "event"), b"%d" % n) == 0
    wait_for(lambda: len(worker.payloads(device_topic("unit-a", "event"))) == 20, what="20 events at the worker")
    assert worker.client.is_connected() and worker.disconnects == []


def test_a_unit_joining_the_share_group_gets_nothing_and_loses_no_one_anything(site: Site) -> None:
    """The measured attack: a unit subscribed to $share/bridge/... took a third of another unit's events."""
    workers = [site.connected("bridge", client_id=f"{BRIDGE_PREFIX}-{n}") for n in range(2)]
    for n, worker in enumerate(workers):
        assert worker.subscribe(*subscriptions(n)) == [GRANTED_QOS1] * (4 if n == 0 else 3)
    rogue = site.connected("unit-b")
    attempts = [SHARE, f"$share/bridge/{DEV}/#", f"$share/bridge/{DEV}/unit-b/event", f"$share/bridge/{DEV}/unit-a/+",
                f"$share/bridge/{DEV}/unit-b/cmd/#", f"$share/other/{DEV}/+/event", "$share/bridge/#",
                f"{DEV}/+/event", f"{DEV}/unit-a/#", f"{DEV}/+/cmd/#", "#"]
    assert rogue.subscribe(*attempts) == [NOT_AUTHORIZED] * len(attempts)
    assert rogue.subscribe(f"{DEV}/unit-b/cmd/#") == [GRANTED_QOS1]  # its own commands still work
    proctor = site.connected("proctor")
    assert proctor.subscribe(SHARE, "$share/bridge/invigil/v1/proctor/#") == [NOT_AUTHORIZED] * 2

    unit_a = site.connected("unit-a")
    sent = [b"event %d" % n for n in range(90)]
    for payload in sent:
        assert unit_a.publish(device_topic("unit-a", "event"), payload) == 0
    topic = device_topic("unit-a", "event")
    wait_for(lambda: sum(len(w.payloads(topic)) for w in workers) == len(sent), what="every event at the bridge")
    assert sorted(p for w in workers for p in w.payloads(topic)) == sorted(sent)  # all of them, once each
    assert all(w.payloads(topic) for w in workers)  # the two workers really share the load
    assert rogue.messages == [] and proctor.messages == []


@pytest.mark.parametrize("topic, reason, delivered", [
    (f"{DEV}/unit-a/event", 0, True),
    (f"{DEV}/unit-a/status", 0, True),
    (f"{DEV}/unit-a/stats", 0, True),
    (f"{DEV}/unit-a/pair", 0, True),
    (f"{DEV}/unit-b/event", NOT_AUTHORIZED, False),  # another device's topic
    (f"{DEV}/unit-b/status", NOT_AUTHORIZED, False),
    (f"{DEV}/unit-a/cmd/session_stop", NOT_AUTHORIZED, False),  # commands come from the bridge only
    (f"{DEV}/unit-a/other", NOT_AUTHORIZED, False),
    ("invigil/v1/proctor/exam-1/alerts", NOT_AUTHORIZED, False),
    ("elsewhere", NOT_AUTHORIZED, False),
])
def test_a_device_writes_only_its_own_topics(site: Site, topic: str, reason: int, delivered: bool) -> None:
    worker = site.connected("bridge", client_id=f"{BRIDGE_PREFIX}-0")  # what the bridge's ingest subscribes to
    assert worker.subscribe(*subscriptions(0)) == [GRANTED_QOS1] * 4
    watcher = site.connected("bridge", client_id="watcher")  # sees anything anyone gets through
    assert watcher.subscribe("invigil/v1/#") == [GRANTED_QOS1]
    device = site.connected("unit-a")

    assert device.publish(topic, b"m1") == reason  # Mosquitto answers a refused QoS 1 PUBLISH: Not authorized
    sentinel = device_topic("unit-a", "stats")
    assert device.publish(sentinel, b"after") == 0
    wait_for(lambda: watcher.topics().count(sentinel) == 1 + (topic == sentinel), what="the sentinel at the watcher")
    wait_for(lambda: worker.topics().count(sentinel) == 1 + (topic == sentinel), what="the sentinel at the worker")
    assert (topic in watcher.topics()) is (delivered and topic.startswith("invigil/v1/"))
    assert (topic in worker.topics()) is delivered
    assert all(t.startswith(f"{DEV}/unit-a/") for t in watcher.topics())


def test_a_device_reads_only_its_own_commands(site: Site) -> None:
    bridge = site.connected("bridge")
    own, other = device_topic("unit-a", "cmd/session_start"), device_topic("unit-b", "cmd/session_start")
    assert bridge.publish(other, b"retained for b", retain=True) == NO_SUBSCRIBERS  # accepted and kept
    assert bridge.publish(own, b"retained for a", retain=True) == NO_SUBSCRIBERS
    device = site.connected("unit-a")
    # SUBSCRIBE is checked: only the unit's own command filter is granted
    assert device.subscribe(f"{DEV}/unit-a/cmd/#", f"{DEV}/unit-b/cmd/#", f"{DEV}/+/event", "#") == [
        GRANTED_QOS1, NOT_AUTHORIZED, NOT_AUTHORIZED, NOT_AUTHORIZED]
    big = os.urandom(MAX_COMMAND_BYTES)  # the largest command fits max_packet_size
    assert bridge.publish(other, b"live for b") == NO_SUBSCRIBERS  # unit-a's filter for it was refused
    assert bridge.publish(own, big) == 0
    wait_for(lambda: any(p == big for _, p, _ in device.messages), what="unit-a's own command")
    assert set(device.topics()) == {own}
    assert {(p, r) for _, p, r in device.messages} == {(b"retained for a", True), (big, False)}


def test_a_proctor_reads_alerts_and_publishes_nothing(site: Site) -> None:
    bridge = site.connected("bridge")
    watcher = site.connected("bridge", client_id="watcher")
    assert watcher.subscribe("invigil/v1/#") == [GRANTED_QOS1]
    proctor = site.connected("proctor")
    assert proctor.subscribe("invigil/v1/proctor/#", f"{DEV}/+/event") == [GRANTED_QOS1, NOT_AUTHORIZED]
    alerts = proctor_topic("exam-1")
    for topic in (alerts, f"{DEV}/unit-a/event", f"{DEV}/unit-a/cmd/session_stop", "elsewhere"):
        assert proctor.publish(topic, b"forged") == NOT_AUTHORIZED
    assert bridge.publish(device_topic("unit-a", "event"), b"device event") == 0  # proctors do not see devices
    assert bridge.publish(alerts, b"alert") == 0
    wait_for(lambda: alerts in proctor.topics(), what="the alert at the proctor")
    wait_for(lambda: alerts in watcher.topics(), what="the alert at the watcher")
    assert proctor.messages == [(alerts, b"alert", False)]
    assert b"forged" not in {p for _, p, _ in watcher.messages}


def test_a_new_device_gets_in_after_a_restart_and_queued_events_survive(site: Site) -> None:
    worker = site.connected("bridge", client_id=f"{BRIDGE_PREFIX}-0", clean_start=False)
    assert worker.subscribe(SHARE) == [GRANTED_QOS1]
    worker.close()  # the bridge is away: its persistent session queues what arrives
    unit_a = site.connected("unit-a")
    assert unit_a.publish(device_topic("unit-a", "event"), b"queued") == 0
    site.add("unit-c", "device")
    assert site.peer("unit-c", client_id="early").connect().value == NOT_AUTHORIZED

    site.write()
    site.broker.restart()  # SIGTERM saves the sessions; the plugin reads the new account at start
    worker = site.connected("bridge", client_id=f"{BRIDGE_PREFIX}-0", clean_start=False)  # resumes its session
    assert worker.subscribe(SHARE) == [GRANTED_QOS1]  # as the bridge does on every connect (2.0.11 forgets $share)
    device = site.connected("unit-c")
    assert device.publish(device_topic("unit-a", "event"), b"forged") == NOT_AUTHORIZED
    assert device.publish(device_topic("unit-c", "event"), b"hello") == 0  # its rights came with the restart
    wait_for(lambda: len(worker.messages) == 2, what="the queued and the new event at the bridge")
    assert sorted(worker.topics()) == [device_topic("unit-a", "event"), device_topic("unit-c", "event")]
    assert base64.b64encode(b"forged") not in {base64.b64encode(p) for _, p, _ in worker.messages}


def test_the_bridges_own_consumers_keep_every_event_while_a_unit_tries_to_join(
        site: Site, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "bridge.pw").write_text(site.passwords["bridge"] + "\n")
    config = MqttConfig.model_validate({"host": "127.0.0.1", "port": site.port, "username": "bridge",
                                        "password_file": tmp_path / "bridge.pw", "client_prefix": BRIDGE_PREFIX})
    got: list[bytes] = []
    lock = threading.Lock()

    def handle(_topic: str, payload: bytes) -> None:
        with lock:
            got.append(payload)

    consumers = [Consumer(config, n, handle) for n in range(2)]
    for consumer in consumers:
        consumer.start()
    try:
        wait_for(lambda: all(c.connected.is_set() for c in consumers), what="both consumers")
        rogue = site.connected("unit-b")
        assert rogue.subscribe(*subscriptions(0)) == [NOT_AUTHORIZED] * 4  # the bridge's very filters
        assert site.peer("unit-b", client_id=consumers[1].client_id).connect(False).value == NOT_AUTHORIZED
        unit_a = site.connected("unit-a")
        sent = [b"event %d" % n for n in range(60)]
        for payload in sent:
            assert unit_a.publish(device_topic("unit-a", "event"), payload) == 0
        wait_for(lambda: len(got) >= len(sent), what="every event at the bridge's consumers")
        with lock:
            assert sorted(got) == sorted(sent)
        assert all(c.handled for c in consumers) and rogue.messages == []
        assert "refused" not in caplog.text  # the bridge's own subscriptions were all granted
    finally:
        for consumer in consumers:
            consumer.stop()
