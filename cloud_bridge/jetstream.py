"""The bridge consuming a replicated JetStream stream instead of an MQTT shared subscription.

For a national exam day behind a NATS cluster (docs/scale.md): ``serve`` runs it with ``[broker] engine =
"nats"`` (cloud_bridge/nats_engine.py runs it on a thread and publishes the bridge's messages). NATS's MQTT
gateway turns a unit's topic ``invigil/v1/dev/<id>/event`` into the subject ``invigil.v1.dev.<id>.event``; the
stream ``INVIGIL_DEV`` (file storage, 3 replicas) captures the device subjects, and every bridge worker pulls
batches from one durable consumer with explicit acknowledgements: the same ``Dispatcher.handle_batch`` as the
MQTT consumers, each message acknowledged only after its batch committed, one the handler could not handle (an
Exception, the database away) negatively acknowledged with a delay so JetStream redelivers it. Workers share the
durable's messages, in this process or on other hosts; ingest is idempotent, so a redelivery after a crash is a
``duplicate``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import nats
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from edge_app.protocol import PREFIX

log = logging.getLogger(__name__)
STREAM = "INVIGIL_DEV"
DURABLE = "bridge"
LEAVES = ("event", "pair", "stats")
SUBJECTS = [f"{PREFIX.replace('/', '.')}.dev.*.{leaf}" for leaf in LEAVES]
RETRY_SECONDS = 2.0  # a message whose handler failed is redelivered after this long
BatchHandler = Callable[[list[tuple[str, bytes]]], Sequence[object]]


def topic_of(subject: str) -> str:
    """The MQTT topic a device published on (device ids and the prefix hold no dots or slashes to escape)."""
    return subject.replace(".", "/")


async def ensure_stream(js: nats.js.JetStreamContext, replicas: int = 3) -> None:
    """Create ``INVIGIL_DEV`` if missing (idempotent; its settings are not changed if it exists)."""
    try:
        await js.stream_info(STREAM)
    except NotFoundError:
        await js.add_stream(StreamConfig(name=STREAM, subjects=SUBJECTS, storage=StorageType.FILE,
                                         num_replicas=replicas))


class JetStreamConsumer:
    """``workers`` pull loops on the durable ``bridge`` handing batches to ``handle_batch`` (on a thread)."""

    def __init__(self, servers: list[str], handle_batch: BatchHandler, *, workers: int = 1, batch_max: int = 100,
                 replicas: int = 3, ack_wait: float = 30.0) -> None:
        self.servers, self.handle_batch, self.workers = servers, handle_batch, workers
        self.batch_max, self.replicas, self.ack_wait = batch_max, replicas, ack_wait
        self.handled = 0  # messages acknowledged
        self.failed = 0  # messages negatively acknowledged (redelivered later)
        self.ready = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set: connect (to any of ``servers``; reconnects on its own), pull, handle, ack."""
        connection = await nats.connect(servers=self.servers, max_reconnect_attempts=-1, reconnect_time_wait=0.2,
                                        connect_timeout=5)
        try:
            js = connection.jetstream(timeout=10)
            await ensure_stream(js, self.replicas)
            config = ConsumerConfig(durable_name=DURABLE, ack_policy=AckPolicy.EXPLICIT, ack_wait=self.ack_wait,
                                    max_ack_pending=self.batch_max * self.workers * 2)
            subs = [await js.pull_subscribe("", durable=DURABLE, stream=STREAM, config=config)
                    for _ in range(self.workers)]
            self.ready.set()
            await asyncio.gather(*(self._pull(sub, stop) for sub in subs))
        finally:
            await connection.close()

    async def _pull(self, sub: nats.js.JetStreamContext.PullSubscription, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                messages = await sub.fetch(self.batch_max, timeout=0.5)
            except NatsTimeout:
                continue
            except Exception as exc:  # a node away, a leader election: try again shortly
                log.warning("jetstream consumer: fetch failed: %r", exc)
                await asyncio.sleep(0.2)
                continue
            batch = [(topic_of(m.subject), m.data) for m in messages]
            try:
                outcomes = list(await asyncio.to_thread(self.handle_batch, batch))
            except Exception as exc:  # never the end of the loop: every message comes back later
                outcomes = [exc] * len(batch)
            if len(outcomes) != len(batch):
                outcomes = [RuntimeError("outcome count")] * len(batch)
            for message, outcome in zip(messages, outcomes, strict=True):
                try:
                    if isinstance(outcome, Exception):
                        await message.nak(delay=RETRY_SECONDS)
                        self.failed += 1
                    else:
                        await message.ack_sync(timeout=5)  # lost acks mean redelivery: a duplicate, not a loss
                        self.handled += 1
                except Exception as exc:
                    log.warning("jetstream consumer: ack failed (redelivered later): %r", exc)
