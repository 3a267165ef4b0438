"""A bridge SIGKILLed in the middle of a batch loses nothing: a real Mosquitto, the bridge in a process of its
own (on SQLite), a unit publishing 60 events once each at QoS 1 (no resend: only the broker can bring back
what the bridge did not acknowledge). The first bridge dies with a batch's rows written and not committed,
the second right after a batch's commit and before its acknowledgements; the third, unharmed, ends with every
event stored once, its proctor alert recorded once, the chain whole, and the committed batch seen again as
duplicates (the broker redelivered it; ingest is idempotent)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from cloud_bridge.sessions import Sessions
from cloud_bridge.store import Store
from cloud_bridge.store.models import DeadLetter, Device, EventRow, OutboxMessage, ProctorAlert
from edge_app.protocol import proctor_topic
from tests.bridge.parts import DEVICE_KEY, PHOTO, event_payloads, register
from tests.bridge.test_consumers import Device as Unit
from tests.mosquitto import Mosquitto, wait_for

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 60

# The bridge of `python -m cloud_bridge serve` (without HTTP), dying where argv[2] says.
BRIDGE = """
import json, os, signal, sys, threading
from pathlib import Path
from cloud_bridge.app import Bridge
from cloud_bridge.config import load

printing = threading.Lock()  # two consumer threads print: one whole line at a time

def say(**fields):
    with printing:
        sys.stdout.write(json.dumps(fields) + "\\n")
        sys.stdout.flush()

def die(where, ids):
    say(killed=where, ids=ids)
    os.kill(os.getpid(), signal.SIGKILL)

bridge, mode = Bridge(load(Path(sys.argv[1])), http=False), sys.argv[2]
if mode == "before-commit":  # the batch's events and alerts are written in its transaction, not committed
    record = bridge.services.feed.record_batch
    def dying(session, stored):
        out = record(session, stored)
        if len(stored) >= 2:
            die(mode, [event.event_id for event, _flag in stored])
        return out
    bridge.services.feed.record_batch = dying
for consumer in bridge.consumers:
    def batch(messages, handle=consumer.batch):
        outcomes = handle(messages)
        stored = [json.loads(payload)["id"] for (_t, payload), o in zip(messages, outcomes) if o == "stored"]
        if mode == "after-commit" and len(stored) >= 2:  # committed; the acknowledgements never leave
            die(mode, stored)
        say(outcomes=[str(o) for o in outcomes])
        return outcomes
    consumer.batch = batch
bridge.start()
assert all(consumer.subscribed.wait(20) for consumer in bridge.consumers)
say(ready=True)
threading.Event().wait()
"""


class BridgeProcess:
    """The bridge above in a process of its own, started and subscribed; the JSON lines it printed."""

    def __init__(self, config: Path, mode: str, started: list[BridgeProcess]) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", BRIDGE, str(config), mode], cwd=ROOT, text=True,
                                        stdout=subprocess.PIPE, stderr=(config.parent / f"{mode}.log").open("w"))
        started.append(self)
        self.lines: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        wait_for(lambda: self.line("ready") or self.line("killed"), 60, f"the {mode} bridge to start")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for text in self.process.stdout:
            with self.lock:
                self.lines.append(json.loads(text))

    def line(self, key: str) -> dict[str, Any] | None:
        with self.lock:
            return next((line for line in self.lines if key in line), None)

    def outcomes(self) -> list[str]:
        with self.lock:
            return [outcome for line in self.lines for outcome in line.get("outcomes", [])]

    def killed(self) -> list[str]:
        """The ids of the batch it died in; checks that it died of SIGKILL."""
        wait_for(lambda: self.line("killed"), 30, "the bridge to die")
        assert self.process.wait(20) == -9
        line = self.line("killed")
        assert line is not None
        return list(line["ids"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(20)
        self.reader.join(10)


def stored_ids(store: Store) -> set[str]:
    with store.session() as session:
        return set(session.scalars(select(EventRow.event_id)))


def test_a_bridge_killed_mid_batch_loses_nothing(tmp_path: Path, broker: Mosquitto) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path / "bridge.db"}"\nkey_file = "bridge.key"\n'
                      f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nkeepalive = 5\nworkers = 2\n'
                      'client_prefix = "bridge-killed"\nbatch_max = 10\nbatch_wait_ms = 100\n')
    store = Store(f"sqlite:///{tmp_path / 'bridge.db'}")
    register(store, "unit-1", DEVICE_KEY)
    sessions = Sessions(store)
    sessions.pair("unit-1", sessions.create("math-101", "cand-7", PHOTO).pairing_code or "")
    sent = event_payloads(EVENTS)
    unit, started = Unit(broker), list[BridgeProcess]()
    try:
        first = BridgeProcess(config, "before-commit", started)
        for payload in sent:
            unit.publish("event", payload)  # once each: the broker holds what the bridge has not acknowledged
        rolled_back = first.killed()
        assert len(rolled_back) >= 2 and not set(rolled_back) & stored_ids(store)

        second = BridgeProcess(config, "after-commit", started)
        committed = second.killed()
        assert len(committed) >= 2 and set(committed) <= stored_ids(store)

        third = BridgeProcess(config, "unharmed", started)
        wait_for(lambda: len(stored_ids(store)) == EVENTS, 60, "every event stored")
        # the committed batch comes again: it was never acknowledged
        wait_for(lambda: third.outcomes().count("duplicate") >= len(committed), 30, "the redelivered batch")
    finally:
        for bridge in started:  # none outlives the test, whatever failed
            bridge.stop()
        unit.close()
    with store.session() as session:
        rows = session.execute(select(func.count(), func.count(func.distinct(EventRow.event_id)), func.min(
            EventRow.seq), func.max(EventRow.seq), func.count(EventRow.flag))).one()
        assert tuple(rows) == (EVENTS, EVENTS, 1, EVENTS, 0)  # each once, none missing, the chain whole
        assert session.scalar(select(Device.last_seq)) == EVENTS
        ids = sorted(json.loads(payload)["id"] for payload in sent)
        # one proctor alert and one republish per event, none twice (a slow run may add a device_offline alert)
        alerts = session.scalars(select(ProctorAlert.event_id).where(ProctorAlert.event_id.is_not(None))).all()
        assert sorted(str(event) for event in alerts) == ids
        republished = [json.loads(payload)["event"] for payload in session.scalars(
            select(OutboxMessage.payload).where(OutboxMessage.topic == proctor_topic("math-101")))]
        assert sorted(event for event in republished if event is not None) == ids
        assert session.scalar(select(func.count()).select_from(DeadLetter)) == 0
    store.close()
