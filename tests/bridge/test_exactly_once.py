"""Proctor alerts exactly once (cloud_bridge/exactly_once.py) through a real Mosquitto to a QoS 2 proctor: a
publisher process SIGKILLed at each point of the QoS 2 exchange, and a broker restarted mid-stream; packet ids
never reused while a row holds one, wrapping at 65535; an alert the broker refuses at its PUBREC."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from cloud_bridge.exactly_once import ExactlyOnce, PacketIdClient
from cloud_bridge.mqtt import Publisher
from cloud_bridge.outbox import BridgeOutbox
from cloud_bridge.store import Store
from cloud_bridge.store.models import OutboxMessage
from tests.bridge.test_broker_qos2 import TOPIC, Subscriber
from tests.bridge.test_consumers import mqtt_config
from tests.mosquitto import Mosquitto, wait_for
from tools.mosquitto import anonymous_conf, free_port

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "eo-t"

CHILD = """
import os, signal, sys, threading
from cloud_bridge.config import MqttConfig
from cloud_bridge.mqtt import Publisher
from cloud_bridge.outbox import BridgeOutbox
from cloud_bridge.store import Store

url, port, point, topic = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[6]
nth, count = int(sys.argv[4]), int(sys.argv[5])
publisher = Publisher(MqttConfig.model_validate({"host": "127.0.0.1", "port": port, "client_prefix": "eo-t",
                                                 "keepalive": 5}))
store = Store(url)
outbox = BridgeOutbox(store, publisher.publish)  # no relay: nothing is marked sent in this process
seen = {"pubrec": 0, "pubcomp": 0}
released, completed = publisher.client.before_pubrel, publisher.client.on_publish

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def before_pubrel(mid):
    seen["pubrec"] += 1
    if point == "pubrec" and seen["pubrec"] == nth:
        die()  # its PUBLISH went out and was PUBREC'd; `released` not committed
    ok = released(mid)
    if point == "pubrel" and seen["pubrec"] == nth:
        die()  # `released` committed, the PUBREL not sent
    return ok

def on_publish(*args):
    seen["pubcomp"] += 1
    if point == "pubcomp" and seen["pubcomp"] == nth:
        die()  # the PUBREL went out and the PUBCOMP came: not recorded
    completed(*args)

publisher.client.before_pubrel, publisher.client.on_publish = before_pubrel, on_publish
publisher.start()
assert publisher.connected.wait(10)
with store.session() as session, session.begin():
    outbox.add_many(session, [(topic, f"alert-{n}".encode()) for n in range(count)], qos=2)
threading.Event().wait(30)
sys.exit(3)
"""


def rows(store: Store) -> list[tuple[int, int | None, str, float | None]]:
    with store.session() as session:
        return [tuple(row) for row in session.execute(  # type: ignore[misc]
            select(OutboxMessage.id, OutboxMessage.packet_id, OutboxMessage.state, OutboxMessage.sent_at)
            .order_by(OutboxMessage.id))]


def relay(outbox: BridgeOutbox) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=outbox.run, args=(stop, 0.05), daemon=True)
    thread.start()
    return stop, thread


@contextmanager
def relaying(store: Store, broker: Mosquitto, prefix: str) -> Iterator[tuple[Publisher, BridgeOutbox, ExactlyOnce]]:
    """A publisher started with its outbox (unsent rows published at once) and the outbox's relay; stopped after."""
    publisher = Publisher(mqtt_config(broker, prefix))
    outbox = BridgeOutbox(store, publisher.publish, stale_after=0.0)
    once = outbox.exactly_once
    assert once is not None
    stop, thread = relay(outbox)
    publisher.start()
    try:
        yield publisher, outbox, once
    finally:
        stop.set()
        thread.join(5)
        publisher.stop()


@pytest.mark.parametrize(("point", "state"), [("pubrec", "published"), ("pubrel", "released"),
                                              ("pubcomp", "released")])
def test_a_publisher_killed_inside_a_qos2_exchange_delivers_each_alert_once_after_its_restart(
        tmp_path: Path, broker: Mosquitto, point: str, state: str) -> None:
    url, count, nth = f"sqlite:///{tmp_path / 'bridge.db'}", 12, 4
    store = Store(url)
    proctor = Subscriber(broker.port)
    try:
        killed = subprocess.run([sys.executable, "-c", CHILD, url, str(broker.port), point, str(nth), str(count),
                                 TOPIC], cwd=ROOT, capture_output=True, timeout=60)
        assert killed.returncode == -9, killed.stderr.decode()[-2000:]
        before = rows(store)
        assert len(before) == count and all(sent is None and mid is not None for _id, mid, _s, sent in before)
        assert before[nth - 1][2] == state  # killed where the test meant: the row's committed state
        if point == "pubcomp":  # delivered before the kill: the restart must not deliver it again
            wait_for(lambda: len(proctor.payloads) >= nth, what="the alerts completed before the kill")
        with relaying(store, broker, PREFIX) as (_publisher, outbox, once):
            wait_for(lambda: outbox.pending() == 0, 20, "the unfinished alerts after the restart")
            with store.session() as session, session.begin():  # and new ones after them
                outbox.add_many(session, [(TOPIC, f"later-{n}".encode()) for n in range(5)], qos=2)
            wait_for(lambda: outbox.pending() == 0, 20, "the later alerts")
            got = proctor.settled(broker.port, b"probe")
            expected = [f"alert-{n}".encode() for n in range(count)] + [f"later-{n}".encode() for n in range(5)]
            assert sorted(got) == sorted(expected)  # each exactly once
            assert once.resumed == count and once.ambiguous == 0
            assert all(mid is None and sent is not None for _id, mid, _s, sent in rows(store))  # ids freed
    finally:
        proctor.close()
        store.close()


def test_a_broker_that_lost_the_session_gets_published_rows_as_new_and_released_ones_again(
        tmp_path: Path, broker: Mosquitto) -> None:
    """The at-least-once corner: the publisher killed with rows released, the broker's state then lost."""
    url, count, nth = f"sqlite:///{tmp_path / 'bridge.db'}", 12, 4
    store = Store(url)
    killed = subprocess.run([sys.executable, "-c", CHILD, url, str(broker.port), "pubrel", str(nth), str(count),
                             TOPIC], cwd=ROOT, capture_output=True, timeout=60)
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    released = sum(state == "released" for _id, _mid, state, _sent in rows(store))
    assert released >= 1
    broker.kill()  # no save: the sessions and held messages are gone
    for saved in (tmp_path / "broker" / "data").glob("*.db"):
        saved.unlink()
    broker.start()
    proctor = Subscriber(broker.port)
    try:
        with relaying(store, broker, PREFIX) as (_publisher, outbox, once):
            wait_for(lambda: outbox.pending() == 0, 20, "the unfinished alerts after the restart")
            got = proctor.settled(broker.port, b"probe")
            assert sorted(got) == sorted(f"alert-{n}".encode() for n in range(count))  # none lost
            assert once.ambiguous == released and once.resumed == count  # the released ones counted as in doubt
    finally:
        proctor.close()
        store.close()


def test_a_broker_restart_mid_stream_delivers_each_alert_once(tmp_path: Path, broker: Mosquitto) -> None:
    store = Store(f"sqlite:///{tmp_path / 'bridge.db'}")
    proctor = Subscriber(broker.port)
    publisher = Publisher(mqtt_config(broker, PREFIX))
    outbox = BridgeOutbox(store, publisher.publish, stale_after=0.0)
    once = outbox.exactly_once
    assert once is not None
    midway = threading.Event()
    released = publisher.client.before_pubrel

    def before_pubrel(mid: int) -> bool:
        midway.set()  # a PUBREC: the stream is under way
        return released(mid)

    publisher.client.before_pubrel = before_pubrel
    stop, thread = relay(outbox)
    publisher.start()
    try:
        assert publisher.connected.wait(10)
        with store.session() as session, session.begin():
            outbox.add_many(session, [(TOPIC, f"alert-{n}".encode()) for n in range(200)], qos=2)
        assert midway.wait(10)
        broker.stop()  # SIGTERM: saved with persistence
        with store.session() as session, session.begin():  # while the broker is away
            outbox.add_many(session, [(TOPIC, f"away-{n}".encode()) for n in range(50)], qos=2)
        broker.start()
        wait_for(lambda: outbox.pending() == 0, 30, "every alert completed")
        got = proctor.settled(broker.port, b"probe")
        expected = [f"alert-{n}".encode() for n in range(200)] + [f"away-{n}".encode() for n in range(50)]
        assert sorted(got) == sorted(expected)  # each exactly once
        # unfinished exchanges were taken up at the reconnect, none in doubt; more than the broker's receive
        # maximum (20) of them, which Mosquitto refuses beyond with a PUBREC that paho takes for success
        assert once.resumed > 20 and once.ambiguous == 0
    finally:
        stop.set()
        thread.join(5)
        publisher.stop()
        proctor.close()
        store.close()


def test_packet_ids_are_never_reused_while_held_and_wrap_at_65535() -> None:
    client = PacketIdClient(CallbackAPIVersion.VERSION2, client_id="ids", protocol=MQTTProtocolVersion.MQTTv5)
    client.hold([2, 3])  # held by unfinished rows found at start
    first = [client.reserve() for _ in range(3)]
    assert first == [1, 4, 5]
    taken = first + [client.reserve() for _ in range(65_535 - 5)]
    assert sorted([*taken, 2, 3]) == list(range(1, 65_536))  # every id once: none given twice
    with pytest.raises(RuntimeError):
        client.reserve()  # all 65535 held
    client.release([4, 65_535])
    assert client.reserve() == 4  # after 65535 the search wraps to 1 and skips the held ones
    assert client.reserve() == 65_535
    client.release([10])
    assert client._mid_generate() == 10  # a QoS 1 message's id also skips every held one


def test_a_packet_id_is_held_by_one_row_of_a_publisher_at_a_time(store: Store) -> None:
    with store.session() as session, session.begin():
        session.add_all([OutboxMessage(topic=TOPIC, payload=b"a", qos=2, retain=False, created_at=0.0,
                                       packet_id=7, publisher="p-pub", state="published"),
                         OutboxMessage(topic=TOPIC, payload=b"b", qos=2, retain=False, created_at=0.0,
                                       packet_id=7, publisher="other-pub", state="published"),
                         OutboxMessage(topic=TOPIC, payload=b"c", qos=2, retain=False, created_at=0.0,
                                       packet_id=None, publisher="p-pub", state="new")])
    with pytest.raises(IntegrityError), store.session() as session, session.begin():
        session.add(OutboxMessage(topic=TOPIC, payload=b"d", qos=2, retain=False, created_at=0.0, packet_id=7,
                                  publisher="p-pub", state="published"))
    with store.session() as session, session.begin():  # freed when its row is sent: free to hold again
        row = session.scalars(select(OutboxMessage).where(OutboxMessage.payload == b"a")).one()
        row.packet_id, row.sent_at = None, 1.0
        session.add(OutboxMessage(topic=TOPIC, payload=b"d", qos=2, retain=False, created_at=0.0, packet_id=7,
                                  publisher="p-pub", state="published"))


@pytest.mark.parametrize("qos", [1, 2])
def test_a_message_the_broker_refuses_is_not_marked_sent_and_goes_again(tmp_path: Path, qos: int) -> None:
    """Mosquitto answers a PUBLISH its ACL denies with a PUBACK (QoS 1) or PUBREC (QoS 2) "not authorized";
    paho alone counts the first as published, and for the second sends the PUBREL and takes the PUBCOMP for
    a delivery. Here the row stays unsent and is published again after a pause, so once the rights are fixed
    (the ACL reloaded) every message arrives (QoS 2: each once)."""
    acl, port = tmp_path / "acl", free_port()
    acl.write_text("topic readwrite invigil/v1/proctor/open/#\ntopic read invigil/v1/proctor/closed/#\n")
    broker = Mosquitto(tmp_path / "broker", anonymous_conf(port, tmp_path / "broker" / "data") + f"acl_file {acl}\n")
    broker.start()
    got: list[bytes] = []
    proctor = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="refusal-proctor",
                          protocol=MQTTProtocolVersion.MQTTv5)
    proctor.on_message = lambda _c, _u, message: got.append(bytes(message.payload))
    proctor.connect("127.0.0.1", port)
    proctor.subscribe("invigil/v1/proctor/#", qos=2)
    proctor.loop_start()
    store, stack = Store(f"sqlite:///{tmp_path / 'bridge.db'}"), ExitStack()
    try:
        publisher, outbox, once = stack.enter_context(relaying(store, broker, "refusals"))
        assert publisher.connected.wait(10)
        closed = [("invigil/v1/proctor/closed/alerts", f"closed-{n}".encode()) for n in range(3)]
        opened = [("invigil/v1/proctor/open/alerts", f"open-{n}".encode()) for n in range(2)]
        with store.session() as session, session.begin():
            outbox.add_many(session, closed + opened, qos=qos)
        wait_for(lambda: (once.refused if qos == 2 else outbox.refused) >= 3, 10, "the broker's refusals")
        wait_for(lambda: outbox.pending() == 3, 10, "the accepted alerts marked sent")
        assert all(sent is None for _id, _mid, _state, sent in rows(store)[:3])  # refused: never marked sent
        assert sorted(got) == [b"open-0", b"open-1"]
        acl.write_text("topic readwrite invigil/v1/proctor/#\n")
        os.kill(broker.pid, signal.SIGHUP)  # the rights fixed: the refused alerts go through at their retry
        wait_for(lambda: outbox.pending() == 0, 30, "the refused alerts published again")
        wait_for(lambda: len(got) >= 5, 10, "the refused alerts at the proctor")
        assert sorted(set(got)) == sorted(payload for _topic, payload in closed + opened)
        assert qos == 1 or len(got) == 5  # QoS 2: each once
        assert all(mid is None for _id, mid, _state, _sent in rows(store))  # packet ids freed
    finally:
        stack.close()
        proctor.loop_stop()
        proctor.disconnect()
        store.close()
        broker.kill()
