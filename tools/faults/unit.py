"""A camera unit for the fault suite, as a process: the project's own outbox, MQTT link and receipts publishing
signed events at a steady rate, with no camera and no models (``python -m tools.faults.unit CONFIG.json``).

It pairs with the session whose code it is given, writes ``events`` alerts at ``rate`` a second (its wall clock
off by ``skew`` seconds from the event index given on), sends a heartbeat every second (which also reports
alerts its outbox refused, once it takes events again, as a real unit does), and then keeps its link up until
SIGTERM, when it stops the link cleanly. Progress goes to stdout as JSON lines: ``{"paired": true}``,
``{"written": i}`` after each event accepted (i counts from 1), ``{"refused": n}`` when the outbox refuses one,
``{"produced": i}`` at the end of the run and ``{"stopped": rows left}``.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import BaseModel, ConfigDict, Field

from edge_app.link.config import MqttLinkConfig
from edge_app.link.events import EventWriter
from edge_app.link.mqtt import MqttLink
from edge_app.link.outbox import Outbox, OutboxError
from edge_app.link.receipts import Receipts
from edge_app.protocol import ProtocolError
from edge_app.protocol.commands import encode_stats, open_signed, seal
from edge_app.protocol.keys import load_or_create_key

PAIR_SECONDS = 30.0  # how long the unit tries to pair before it gives up (exit 3)
PAIR_RESEND = 2.0
BEAT_SECONDS = 1.0


class UnitConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device_id: str
    data_dir: Path
    bridge_key: Path
    broker: MqttLinkConfig
    events: int = Field(0, ge=0)
    rate: float = Field(40.0, gt=0)
    pair_code: str | None = None
    skew: list[tuple[int, float]] = Field(default_factory=list, description="(from event index, seconds off)")
    full_flag: Path | None = Field(None, description="while this file exists the outbox file may not grow (a full "
                                   "disk where the suite cannot mount a small filesystem)")


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


class Unit:
    def __init__(self, config: UnitConfig) -> None:
        self.config = config
        self.key = load_or_create_key(config.data_dir / "device.key")
        self.outbox = Outbox(config.data_dir / "outbox.db")
        bridge_key = load_pem_public_key(config.bridge_key.read_bytes())
        if not isinstance(bridge_key, Ed25519PublicKey):
            raise ValueError(f"{config.bridge_key}: not an Ed25519 public key")
        self.receipts = Receipts(self.outbox, bridge_key, config.device_id,
                                 config.broker.receipt_timeout)
        self.link = MqttLink(config.broker, config.device_id, self.outbox, on_command=self.on_command,
                             receipts=self.receipts)
        self.writer = EventWriter(config.device_id, self.key, self.outbox, (640, 480))
        self.paired, self.stop = threading.Event(), threading.Event()
        self.skew = 0.0
        self.capped = False

    def now_ms(self) -> int:
        return int((time.time() + self.skew) * 1000)

    def on_command(self, name: str, payload: bytes) -> None:
        if name != "pair":
            return
        try:
            fields = open_signed("pair", payload, self.receipts.bridge_key, to=self.config.device_id)
        except ProtocolError as exc:
            say(command_refused=str(exc))
            return
        if fields.get("ok"):
            self.paired.set()

    def pair(self, code: str) -> bool:
        deadline = time.monotonic() + PAIR_SECONDS
        while not self.paired.is_set() and time.monotonic() < deadline and not self.stop.is_set():
            if self.link.subscribed:
                self.link.send("pair", seal("pair_request", {"d": self.config.device_id, "code": code, "via": "typed"},
                                            self.key, self.now_ms()), qos=1)
            self.paired.wait(PAIR_RESEND)
        return self.paired.is_set()

    def beat(self) -> None:
        """A heartbeat; alerts the outbox refused are reported once it takes events again."""
        with contextlib.suppress(OutboxError):  # still full: the next beat tries again
            self.writer.report_refused(self.now_ms())
        self.link.send("stats", encode_stats({"d": self.config.device_id, "queue": self.outbox.count()},
                                             self.now_ms()))

    def disk(self) -> None:
        """While ``full_flag`` exists, the outbox file compacted (VACUUM: no free pages left) and capped at the
        pages it has: SQLite's own "database or disk is full", as on a full disk (tests/edge/link/test_outbox.py
        caps it the same way)."""
        if self.config.full_flag is None or self.config.full_flag.exists() == self.capped:
            return
        self.capped = not self.capped
        with self.outbox._lock:  # the suite reaches into the outbox's connection, as its own tests do
            if self.capped:
                self.outbox._db.execute("VACUUM")
            pages = self.outbox._db.execute("PRAGMA page_count").fetchone()[0] if self.capped else 1 << 30
            self.outbox._db.execute(f"PRAGMA max_page_count = {int(pages)}")

    def produce(self) -> None:
        steps = dict(self.config.skew)
        started = next_beat = time.monotonic()
        for index in range(self.config.events):
            if self.stop.is_set():
                return
            self.skew = steps.get(index, self.skew)
            delay = started + index / self.config.rate - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + BEAT_SECONDS
                self.beat()
            self.disk()
            try:
                self.writer.write({"type": "alert", "id": f"a{index}", "kind": "phone", "phase": "start",
                                   "severity": "warning", "confidence": 0.9}, self.now_ms())
            except OutboxError:
                say(refused=index + 1)
                continue
            self.link.wake()
            say(written=index + 1)
        say(produced=self.config.events)

    def run(self) -> int:
        self.link.start()
        if self.config.pair_code is not None:
            if not self.pair(self.config.pair_code):
                say(error="not paired")
                self.link.stop()
                return 3
            say(paired=True)
        self.produce()
        while not self.stop.wait(BEAT_SECONDS):
            self.beat()
        self.link.stop()
        say(stopped=self.outbox.count())
        self.outbox.close()
        return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m tools.faults.unit CONFIG.json", file=sys.stderr)
        return 2
    unit = Unit(UnitConfig.model_validate_json(Path(args[0]).read_text()))
    signal.signal(signal.SIGTERM, lambda _signum, _frame: unit.stop.set())
    return unit.run()


if __name__ == "__main__":
    sys.exit(main())
