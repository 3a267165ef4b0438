"""The running bridge: store, publisher, consumers, the outbox relay, receipts, the health sweeper and HTTP.

``Bridge(config).start()`` brings everything up; ``stop()`` takes it down in reverse. The HTTP server is
waitress (threads; live pages poll, so a page holds no thread between its polls and at most
``http.max_waiting`` requests wait for news at once).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from cloud_bridge.config import BridgeConfig
from cloud_bridge.dead_letters import DeadLetters
from cloud_bridge.dispatch import Dispatcher
from cloud_bridge.mqtt import Consumer, Publisher
from cloud_bridge.nats_engine import NatsPublisher, StreamConsumer
from cloud_bridge.retention import Retention
from cloud_bridge.services import Services
from cloud_bridge.store import Store
from cloud_bridge.web import create_app, http_server, stop_server
from cloud_bridge.web.review_auth import REVIEW, ReviewSettings
from edge_app.protocol.keys import load_or_create_key

log = logging.getLogger(__name__)
SWEEP_SECONDS = 2.0


class Bridge:
    def __init__(self, config: BridgeConfig, http: bool = True) -> None:
        self.config = config
        self.store = Store(config.database_url)
        self.key = load_or_create_key(config.key_file)
        self.publisher, consumers = _engine(config)
        self.services = Services.build(self.store, self.publisher.publish, self.key, pairing_ttl=config.pairing_ttl,
                                       offline_after=config.offline_after, offline_grace=config.offline_grace,
                                       rules=config.rules)
        self.services.limits = {"upload": config.http.max_upload_bytes, "photo": config.http.max_photo_bytes}
        self.services.ingestor.dead_letters = DeadLetters(self.store, **config.dead_letters.model_dump())
        dispatcher = self.services.dispatcher
        self.consumers = consumers(dispatcher)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.server: Any = None
        self.app = create_app(self.services, http=config.http)
        self.app.extensions[REVIEW] = ReviewSettings(self.key, config.review, {  # exports' seal, the score's weights
            "retention_days": config.retention.retention_days,
            "dismissed_grace_hours": config.retention.dismissed_grace_hours})
        self.retention = Retention(self.store, self.services.commands, config.retention)
        self._fleet()
        if http:
            self.server = http_server(self.app)

    def _fleet(self) -> None:
        """Enrolment, staff and fleet services from the ``[fleet]`` config; pairing checks its minimum version."""
        from cloud_bridge.fleet import build
        from cloud_bridge.web.fleet import FLEET
        from edge_app.protocol.keys import public_pem

        self.app.extensions[FLEET] = build(self.config, self.store, public_pem(self.key))
        self.services.sessions.min_software_version = self.config.fleet.min_software_version

    @property
    def url(self) -> str:
        if self.server is None:
            raise RuntimeError("the bridge runs without HTTP")
        return f"http://{self.server.effective_host}:{self.server.effective_port}"

    def start(self) -> None:
        if not self.services.tokens.any():
            log.warning("no API tokens yet: create one with `python -m cloud_bridge token create --role client`")
        self.publisher.start()
        for consumer in self.consumers:
            consumer.start()
        self._spawn("bridge-sweeper", self._sweep)
        self._spawn("bridge-outbox", lambda: self.services.outbox.run(self._stop))
        if self.services.receipts is not None:
            receipts = self.services.receipts
            self._spawn("bridge-receipts", lambda: receipts.run(self._stop))
        if self.server is not None:
            self._spawn("bridge-http", self.server.run)
            log.info("bridge HTTP on %s", self.url)

    def _spawn(self, name: str, target: Any) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _sweep(self) -> None:
        while not self._stop.wait(SWEEP_SECONDS):
            try:
                self.services.health.sweep()
                self.services.ingestor.flag_gaps(self.config.gap_after)
                self.store.refresh_statistics()  # PostgreSQL: a young table's planner statistics keep up
            except Exception:  # a busy database: try again at the next turn
                log.exception("health sweep failed")
            try:
                self.retention.maybe_run()  # every [retention] every seconds (cloud_bridge/retention.py)
            except Exception:  # a busy database: the next interval tries again
                log.exception("retention sweep failed")

    def wait_connected(self, timeout: float = 10.0) -> bool:
        """True once every consumer is subscribed (what units publish from then on arrives) and the publisher
        is connected, within ``timeout`` seconds each."""
        return all(c.subscribed.wait(timeout) for c in self.consumers) and self.publisher.connected.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        if self.server is not None:
            if any(thread.name == "bridge-http" for thread in self._threads):
                stop_server(self.server, self.app)  # close() alone leaves open streams and their threads
            else:  # never started: release the port
                self.server.close()
                self.server.task_dispatcher.shutdown()
        for consumer in self.consumers:
            consumer.stop()
        self.publisher.stop()
        for thread in self._threads:
            thread.join(5.0)
        self.store.close()


def _engine(config: BridgeConfig) -> tuple[Publisher | NatsPublisher,
                                           Callable[[Dispatcher], list[Consumer] | list[StreamConsumer]]]:
    """The publisher, and what makes the consumers from the dispatcher, for ``[broker] engine``: Mosquitto's MQTT
    clients, or on NATS a JetStream publisher and the JetStream consumer (cloud_bridge/nats_engine.py)."""
    if config.broker.engine == "nats":
        engine = config.broker
        return NatsPublisher(engine.nats_servers), lambda dispatcher: [StreamConsumer(
            engine.nats_servers, dispatcher.handle_batch, workers=engine.nats_workers,
            batch_max=config.mqtt.batch_max, replicas=engine.stream_replicas)]
    return Publisher(config.mqtt), lambda dispatcher: [Consumer(config.mqtt, index, dispatcher.handle,
                                                                dispatcher.handle_batch)
                                                       for index in range(config.mqtt.workers)]
