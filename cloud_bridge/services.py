"""The bridge's parts, built once from the config and shared by the HTTP app and the MQTT consumers."""

from __future__ import annotations

from dataclasses import dataclass, field

from cloud_bridge.dispatch import DeviceCommands, Dispatcher
from cloud_bridge.health import Health
from cloud_bridge.ingest import Ingestor
from cloud_bridge.outbox import BridgeOutbox, Publish
from cloud_bridge.proctor import ProctorFeed
from cloud_bridge.receipts import Receipts
from cloud_bridge.sessions import Sessions
from cloud_bridge.store import Store
from cloud_bridge.tokens import Tokens
from edge_app.protocol.commands import MAX_PHOTO_BYTES
from edge_app.protocol.keys import Ed25519PrivateKey


@dataclass
class Services:
    store: Store
    sessions: Sessions
    feed: ProctorFeed
    health: Health
    ingestor: Ingestor
    tokens: Tokens
    commands: DeviceCommands | None
    dispatcher: Dispatcher
    outbox: BridgeOutbox
    receipts: Receipts | None
    limits: dict[str, int] = field(default_factory=lambda: {"upload": 2_000_000, "photo": MAX_PHOTO_BYTES})

    @classmethod
    def build(cls, store: Store, publish: Publish | None = None, key: Ed25519PrivateKey | None = None, *,
              pairing_ttl: float = 900.0, offline_after: float = 30.0, offline_grace: float = 5.0,
              rules: dict[str, object] | None = None) -> Services:
        outbox = BridgeOutbox(store, publish)  # proctor alerts and commands, published after their commit
        feed = ProctorFeed(store, outbox=outbox)
        health = Health(store, feed, offline_after, offline_grace)
        ingestor = Ingestor(store, gap_notices=feed)  # the proctors hear of lost events as they are found
        sessions = Sessions(store, pairing_ttl)
        sessions.base_rules = dict(rules or {})  # a session's rules are checked over these, as they are sent
        commands = DeviceCommands(outbox, key) if publish is not None and key is not None else None
        receipts = Receipts(store, publish, key) if publish is not None and key is not None else None
        return cls(store, sessions, feed, health, ingestor, Tokens(store), commands,
                   Dispatcher(ingestor, sessions, feed, health, commands, rules, receipts), outbox, receipts)
