"""Receipts to units on SQLite and PostgreSQL: the contiguous stored prefix (never over a hole, even one
flagged as a gap), signed and addressed, batched by count and by time, sent again for resent events."""

from __future__ import annotations

import threading

from cloud_bridge.dispatch import Dispatcher
from cloud_bridge.health import Health
from cloud_bridge.ingest import Ingestor
from cloud_bridge.proctor import ProctorFeed
from cloud_bridge.receipts import Receipts, stored_upto
from cloud_bridge.sessions import Sessions
from cloud_bridge.store import Store
from edge_app.protocol import device_topic
from edge_app.protocol.commands import open_signed
from tests.bridge.parts import BRIDGE_KEY, OTHER_KEY, Clock, Published, event_payloads, register


def receipted(published: Published, device_id: str = "unit-1") -> list[int]:
    return [int(open_signed("receipt", p, BRIDGE_KEY.public_key(), to=device_id)["n"])
            for _t, p, _q, _r in published.on(device_topic(device_id, "cmd/receipt"))]


def test_stored_upto_is_the_contiguous_prefix_and_never_passes_a_hole(store: Store, clock: Clock) -> None:
    register(store, "unit-1")
    ingestor = Ingestor(store, clock)
    payloads = event_payloads(8)
    for index in (0, 1, 2, 4, 5, 7):  # 4 and 7 (sequence numbers) are missing
        assert ingestor.handle(device_topic("unit-1", "event"), payloads[index]).status == "stored"
    assert stored_upto(store, "unit-1") == 3 and stored_upto(store, "unit-1", known=3) == 3
    clock.advance(60)
    ingestor.flag_gaps(30.0)  # the chain check moves over the hole; the unit may still hold event 4
    assert stored_upto(store, "unit-1") == 3
    ingestor.handle(device_topic("unit-1", "event"), payloads[3])
    assert stored_upto(store, "unit-1", known=3) == 6
    ingestor.handle(device_topic("unit-1", "event"), payloads[6])
    assert stored_upto(store, "unit-1") == 8 and stored_upto(store, "unit-2") == 0


def test_receipts_are_batched_by_count_and_by_time_and_answer_resends(store: Store, clock: Clock) -> None:
    register(store, "unit-1")
    register(store, "unit-2", OTHER_KEY)
    published = Published()
    receipts = Receipts(store, published, BRIDGE_KEY, every_events=3, every_seconds=0.2, clock=clock)
    feed = ProctorFeed(store, published, clock)
    dispatcher = Dispatcher(Ingestor(store, clock), Sessions(store, clock=clock), feed, Health(store, feed),
                            None, receipts=receipts)
    payloads = event_payloads(4)
    for payload in payloads[:2]:
        assert dispatcher.handle(device_topic("unit-1", "event"), payload) == "stored"
    assert receipted(published) == []  # neither three events nor 0.2 s yet
    assert receipts.flush() == []
    dispatcher.handle(device_topic("unit-1", "event"), payloads[2])
    assert receipted(published) == [3]  # the third event: at once
    dispatcher.handle(device_topic("unit-1", "event"), payloads[3])
    dispatcher.handle(device_topic("unit-1", "event"), b"not json")  # a dead letter: no receipt due for it
    clock.advance(0.2)
    assert receipts.flush() == ["unit-1"] and receipted(published) == [3, 4]
    dispatcher.handle(device_topic("unit-1", "event"), payloads[1])  # resent by the unit: its receipt again
    assert receipts.flush(everything=True) == ["unit-1"] and receipted(published) == [3, 4, 4]
    assert [m[2:] for m in published.messages] == [(1, False)] * 3 and receipted(published, "unit-2") == []


def test_the_receipts_thread_sends_within_its_period_and_ends_on_stop(store: Store) -> None:
    register(store, "unit-1")
    published = Published()
    receipts = Receipts(store, published, BRIDGE_KEY, every_events=100, every_seconds=0.1)
    Ingestor(store).handle(device_topic("unit-1", "event"), event_payloads(1)[0])
    stop = threading.Event()
    thread = threading.Thread(target=receipts.run, args=(stop,))
    thread.start()
    receipts.note("unit-1")
    done = threading.Event()
    for _ in range(100):
        if receipted(published):
            done.set()
            break
        stop.wait(0.05)
    stop.set()
    thread.join(5)
    assert done.is_set() and receipted(published) == [1] and not thread.is_alive()
