"""Receipts on the unit: only the bridge's signed receipt deletes events; silence resends them (backing off);
through a real Mosquitto, a PUBACK keeps the event and a reconnect or a timeout sends it again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_app.link.mqtt import MqttLink, MqttLinkConfig
from edge_app.link.outbox import Outbox
from edge_app.link.receipts import MAX_BACKOFF, Receipts
from edge_app.protocol import device_topic, new_event_id
from edge_app.protocol.commands import seal
from tests.edge.link.test_mqtt import Observer
from tests.mosquitto import LinkCutter, Mosquitto, wait_for

DEVICE = "unit-7"
BRIDGE = Ed25519PrivateKey.from_private_bytes(bytes(range(7, 39)))  # a fixed test key, not a secret
NOW = 1_795_438_288_123


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def receipt(n: int, key: Ed25519PrivateKey = BRIDGE, to: str = DEVICE) -> bytes:
    return seal("receipt", {"n": n}, key, NOW, to=to)


def fill(outbox: Outbox, count: int) -> list[str]:
    ids = [new_event_id() for _ in range(count)]
    for event_id in ids:
        outbox.put_raw(event_id, device_topic(DEVICE, "event"), json.dumps({"id": event_id}).encode())
    return ids


def test_a_receipt_deletes_up_to_its_number_and_a_forged_one_nothing(outbox: Outbox) -> None:
    fill(outbox, 5)
    receipts = Receipts(outbox, BRIDGE.public_key(), DEVICE, 10.0)
    assert receipts.handle(receipt(3)) == 3
    assert [row[0] for row in outbox.unreceipted()] == [4, 5]
    for bad in (receipt(5, key=Ed25519PrivateKey.generate()), receipt(5, to="unit-8"), b"not json",
                seal("session_stop", {"session": "s"}, BRIDGE, NOW, to=DEVICE)):
        assert receipts.handle(bad) is None
    assert outbox.count() == 2 and receipts.refused == 4
    assert receipts.handle(receipt(2)) == 2 and outbox.count() == 2  # an old one: nothing more goes
    assert receipts.handle(receipt(5)) == 5 and outbox.count() == 0 and receipts.stored == 5
    assert outbox.unreceipted(after_seq=0) == [] and outbox.chain_state()[0] == 5  # numbering goes on


def test_silence_resends_after_the_timeout_doubling_until_a_receipt_moves_on(outbox: Outbox) -> None:
    clock = Clock()
    receipts = Receipts(outbox, BRIDGE.public_key(), DEVICE, 2.0, clock)
    clock.now += 5
    assert not receipts.resend_due()  # nothing waits
    fill(outbox, 3)  # the timeout runs from the last time nothing waited
    waits = []
    for _ in range(8):
        start = clock.now
        while not receipts.resend_due():
            clock.now += 0.5
        waits.append(clock.now - start)
    assert waits == [2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 64.0, 64.0] and MAX_BACKOFF == 32
    receipts.handle(receipt(1))  # progress: back to the plain timeout
    clock.now += 2.0
    assert receipts.resend_due() and receipts.resends == 9


@pytest.fixture
def link_with_receipts(broker: Mosquitto, outbox: Outbox, links: list[MqttLink]) -> tuple[MqttLink, LinkCutter]:
    cutter = LinkCutter(broker.port)
    config = MqttLinkConfig(host="127.0.0.1", port=cutter.port, backoff_min=0.05, backoff_max=0.3,
                            receipt_timeout=1.0)
    link = MqttLink(config, DEVICE, outbox, receipts=Receipts(outbox, BRIDGE.public_key(), DEVICE, 1.0))
    links.append(link)
    link.start()
    wait_for(lambda: link.subscribed, what="the link's command subscription")
    return link, cutter


def test_through_the_broker_a_puback_keeps_events_and_a_timeout_or_reconnect_resends_them(
        broker: Mosquitto, outbox: Outbox, link_with_receipts: tuple[MqttLink, LinkCutter]) -> None:
    link, cutter = link_with_receipts
    observer = Observer(broker.port, "bridge-side")
    try:
        ids = fill(outbox, 4)
        link.wake()
        wait_for(lambda: link.acked == 4, what="four PUBACKs")
        assert outbox.count() == 4  # the broker has them; the bridge has not said it stored them
        wait_for(lambda: len(observer.events()) >= 8, 5, "a resend after the receipt timeout")
        assert observer.events()[:8] == ids + ids  # everything unreceipted, oldest first
        observer.client.publish(device_topic(DEVICE, "cmd/receipt"), receipt(2), qos=1)
        wait_for(lambda: outbox.count() == 2, what="the receipt to delete events 1 and 2")
        seen = len(observer.events())
        cutter.cut()  # a reconnect sends what is still unreceipted at once
        wait_for(lambda: len(observer.events()) >= seen + 2, 5, "the resend after the reconnect")
        assert observer.events()[seen:seen + 2] == ids[2:]
        observer.client.publish(device_topic(DEVICE, "cmd/receipt"), receipt(4), qos=1)
        wait_for(lambda: outbox.count() == 0, what="the outbox to empty on the receipt")
        assert link.receipts is not None and link.receipts.stored == 4
    finally:
        observer.close()
        cutter.close()


def test_the_outbox_keeps_what_a_receipt_does_not_cover_across_a_restart(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    fill(outbox, 3)
    assert outbox.receipt(2) == 2
    outbox.close()
    reopened = Outbox(tmp_path / "o.db")
    assert [row[0] for row in reopened.unreceipted()] == [3] and reopened.unreceipted(after_seq=3) == []
    reopened.close()
