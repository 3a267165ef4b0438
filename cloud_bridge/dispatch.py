"""Route each device message to its handler: events to ingest and the proctor feed, pairing requests to
sessions (answered with commands), heartbeats and status to health. Anything unusable ends in the
dead-letter table with a reason; the only exception raised is the database's own (DBAPIError: it is away
or busy), for the consumer to keep the message and retry it."""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, select
from sqlalchemy.exc import DBAPIError

from cloud_bridge.health import Health
from cloud_bridge.ingest import Ingestor
from cloud_bridge.proctor import ProctorFeed, Publish
from cloud_bridge.sessions import SessionError, Sessions, SessionView
from cloud_bridge.store.models import DeadLetter
from edge_app.protocol import PREFIX, ProtocolError, device_topic
from edge_app.protocol.commands import decode_stats, open_signed, seal
from edge_app.protocol.transport import decode_status

log = logging.getLogger(__name__)
DEVICE_MESSAGE = re.compile(rf"^{re.escape(PREFIX)}/dev/([a-z0-9][a-z0-9-]{{2,13}})/(event|pair|stats|status)$")


class DeviceCommands:
    """Signed commands to devices. ``session_start`` is retained: a unit that (re)connects learns its session."""

    def __init__(self, publish: Publish, key: Ed25519PrivateKey, clock: Callable[[], float] = time.time) -> None:
        self.publish, self.key, self.clock = publish, key, clock

    def send(self, device_id: str, name: str, fields: dict[str, object], retain: bool = False) -> None:
        payload = seal(name, fields, self.key, int(self.clock() * 1000), to=device_id)
        self.publish(device_topic(device_id, f"cmd/{name}"), payload, 1, retain)

    def session_start(self, view: SessionView, photo: bytes, rules: dict[str, object]) -> None:
        assert view.device_id is not None
        fields: dict[str, object] = {"session": view.session_id, "exam": view.exam_id,
                                     "candidate": view.candidate_id,
                                     "photo": base64.urlsafe_b64encode(photo).rstrip(b"=").decode()}
        if rules:
            fields["rules"] = rules
        self.send(view.device_id, "session_start", fields, retain=True)

    def session_stop(self, device_id: str, session_id: str) -> None:
        self.publish(device_topic(device_id, "cmd/session_start"), b"", 1, True)  # clear the retained start
        self.send(device_id, "session_stop", {"session": session_id})


class Dispatcher:
    def __init__(self, ingestor: Ingestor, sessions: Sessions, feed: ProctorFeed, health: Health,
                 commands: DeviceCommands | None, rules: dict[str, object] | None = None) -> None:
        self.ingestor, self.sessions, self.feed, self.health = ingestor, sessions, feed, health
        self.commands, self.rules = commands, rules or {}

    def handle(self, topic: str, payload: bytes) -> str:
        """Handle one message; a short outcome (``stored``, ``paired``, ``dead_letter:<reason>``, ...)."""
        try:
            match = DEVICE_MESSAGE.fullmatch(topic)
            if match is None:
                return self._dead(topic, payload, "bad_topic", f"not a device topic: {topic[:200]!r}")
            device_id, leaf = match.groups()
            if leaf == "event":
                outcome = self.ingestor.handle(topic, payload, also=self.feed.record)  # one transaction
                if outcome.extra is not None:
                    self.feed.deliver(outcome.extra)
                return outcome.status if outcome.status != "dead_letter" else f"dead_letter:{outcome.reason}"
            if leaf == "status":
                state = decode_status(payload)
                if state is None:
                    return "ignored" if not payload else self._dead(topic, payload, "malformed", "not a status")
                return "status" if self.health.status(device_id, state) else "ignored"
            if leaf == "stats":
                fields = decode_stats(payload)
                if fields["d"] != device_id:
                    return self._dead(topic, payload, "wrong_device", f"stats name {fields['d']}")
                return "stats" if self.health.stats(device_id, fields) else \
                    self._dead(topic, payload, "unknown_device", f"device {device_id} is not registered")
            return self._pair(topic, device_id, payload)
        except ProtocolError as exc:
            return self._dead(topic, payload, exc.reason, exc.detail)
        except DBAPIError:  # the database is away or busy: the consumer keeps the message and retries it
            raise
        except Exception as exc:  # one bad message never stops a consumer
            log.exception("message on %s failed", topic)
            return self._dead(topic, payload, "internal", f"{type(exc).__name__}: {exc}")

    def replay(self, reason: str, limit: int = 10_000) -> dict[str, int]:
        """Handle the dead letters kept for ``reason`` again (after a fix: ``internal``; after registering a
        device: ``unknown_device``); each is removed unless it is rejected again. Outcome counts."""
        with self.ingestor.store.session() as session:
            rows = session.execute(select(DeadLetter.id, DeadLetter.topic, DeadLetter.payload)
                                   .where(DeadLetter.reason == reason).order_by(DeadLetter.id).limit(limit)).all()
        outcomes: dict[str, int] = {}
        for row_id, topic, payload in rows:
            outcome = self.handle(topic, payload)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            with self.ingestor.store.session() as session, session.begin():
                session.execute(delete(DeadLetter).where(DeadLetter.id == row_id))  # a new one if rejected again
        return outcomes

    def _dead(self, topic: str, payload: bytes, reason: str, detail: str) -> str:
        self.ingestor.dead_letter(topic, payload, reason, detail)
        return f"dead_letter:{reason}"

    def _pair(self, topic: str, device_id: str, payload: bytes) -> str:
        key = self.ingestor.public_key(device_id)
        if key is None:
            return self._dead(topic, payload, "unknown_device", f"device {device_id} is not registered")
        fields = open_signed("pair_request", payload, key)
        if fields["d"] != device_id:
            return self._dead(topic, payload, "wrong_device", f"pair request names {fields['d']}")
        try:
            view = self.sessions.pair(device_id, fields["code"])
        except (SessionError, ProtocolError) as exc:
            reason = getattr(exc, "reason", "bad_code")
            log.info("pairing of %s refused: %s", device_id, exc)
            if self.commands is not None:
                self.commands.send(device_id, "pair", {"ok": False, "reason": f"{reason}: {exc}"[:200]})
            return f"refused:{reason}"
        log.info("device %s paired with session %s (exam %s, candidate %s)", device_id, view.session_id,
                 view.exam_id, view.candidate_id)
        if self.commands is not None:
            self.commands.send(device_id, "pair", {"ok": True, "session": view.session_id, "exam": view.exam_id,
                                                   "candidate": view.candidate_id})
            stored = self.sessions.rules(view.session_id)
            self.commands.session_start(view, self.sessions.photo(view.session_id),
                                        {**self.rules, **(json.loads(stored) if stored else {})})
        self.feed.notify()
        return "paired"
