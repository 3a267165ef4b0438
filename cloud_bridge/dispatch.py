"""Route each device message to its handler: events to ingest and the proctor feed, pairing requests to
sessions (answered with commands), heartbeats and status to health; a consumer's batch of messages has its
events stored in one transaction. Anything unusable ends in the dead-letter table with a reason; the only
exception raised is the database's own (DBAPIError: it is away or busy), for the consumer to keep the
message and retry it."""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from cloud_bridge.health import Health
from cloud_bridge.ingest import Ingestor, Outcome
from cloud_bridge.outbox import BridgeOutbox
from cloud_bridge.proctor import ProctorFeed
from cloud_bridge.receipts import Receipts
from cloud_bridge.sessions import SessionError, Sessions, SessionView
from cloud_bridge.store.models import DeadLetter, ExamSession
from edge_app.protocol import PREFIX, ProtocolError, device_topic
from edge_app.protocol.commands import decode_stats, open_signed, seal
from edge_app.protocol.transport import decode_status

log = logging.getLogger(__name__)
STOP_AGAIN = 30.0  # seconds between repeated stops of a session a unit should no longer run
NUMBERED = ("session_start", "session_stop", "thresholds", "template")  # commands that carry c
DEVICE_MESSAGE = re.compile(rf"^{re.escape(PREFIX)}/dev/([a-z0-9][a-z0-9-]{{2,13}})/(event|pair|stats|status)$")


class DeviceCommands:
    """Signed commands to devices, through the bridge's outbox: written in ``session``'s transaction (the one
    that changed what they announce) or their own, published after. Session commands carry ``c``, their
    outbox row's id (increasing), so a unit can tell a late copy. ``session_start`` is retained: a unit that
    (re)connects learns its session."""

    def __init__(self, outbox: BridgeOutbox, key: Ed25519PrivateKey, clock: Callable[[], float] = time.time) -> None:
        self.outbox, self.key, self.clock = outbox, key, clock

    def send(self, device_id: str, name: str, fields: dict[str, object], retain: bool = False,
             session: Session | None = None) -> None:
        now_ms = int(self.clock() * 1000)

        def build(number: int) -> bytes:
            numbered = {**fields, "c": number} if name in NUMBERED else fields
            return seal(name, numbered, self.key, now_ms, to=device_id)
        with self._within(session) as within:
            self.outbox.add(within, device_topic(device_id, f"cmd/{name}"), build, 1, retain)

    @contextmanager
    def _within(self, session: Session | None) -> Iterator[Session]:
        """``session`` (the caller's transaction), or a transaction of the commands' own."""
        if session is not None:
            yield session
            return
        with self.outbox.store.session() as own, own.begin():
            yield own

    def session_start(self, view: SessionView, photo: bytes, rules: dict[str, object],
                      session: Session | None = None) -> None:
        assert view.device_id is not None
        fields: dict[str, object] = {"session": view.session_id, "exam": view.exam_id,
                                     "candidate": view.candidate_id,
                                     "photo": base64.urlsafe_b64encode(photo).rstrip(b"=").decode()}
        if rules:
            fields["rules"] = rules
        self.send(view.device_id, "session_start", fields, retain=True, session=session)

    def ended(self, session: Session, row: ExamSession) -> None:
        """``Sessions.end``'s hook: the stop for the unit, in the transaction that ends its session."""
        assert row.device_id is not None
        self.session_stop(row.device_id, row.session_id, session)

    def session_stop(self, device_id: str, session_id: str, session: Session | None = None) -> None:
        """Clear the retained start, then ``session_stop``, in one transaction."""
        with self._within(session) as within:
            self.outbox.add(within, device_topic(device_id, "cmd/session_start"), b"", 1, True)
            self.send(device_id, "session_stop", {"session": session_id}, session=within)


class Dispatcher:
    def __init__(self, ingestor: Ingestor, sessions: Sessions, feed: ProctorFeed, health: Health,
                 commands: DeviceCommands | None, rules: dict[str, object] | None = None,
                 receipts: Receipts | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.ingestor, self.sessions, self.feed, self.health = ingestor, sessions, feed, health
        self.commands, self.rules, self.receipts, self.clock = commands, rules or {}, receipts, clock
        self._stops: dict[str, float] = {}  # device -> when a stale session was last stopped again
        self._own: dict[str, tuple[str, float]] = {}  # device -> a session found its own and running, and when

    def handle(self, topic: str, payload: bytes) -> str:
        """Handle one message; a short outcome (``stored``, ``paired``, ``dead_letter:<reason>``, ...)."""
        try:
            match = DEVICE_MESSAGE.fullmatch(topic)
            if match is None:
                return self._dead(topic, payload, "bad_topic", f"not a device topic: {topic[:200]!r}")
            device_id, leaf = match.groups()
            if leaf == "event":
                return self._ingested(device_id, self.ingestor.handle(topic, payload, also=self.feed.record_batch))
            if leaf == "status":
                state = decode_status(payload)
                if state is None:
                    return "ignored" if not payload else self._dead(topic, payload, "malformed", "not a status")
                return "status" if self.health.status(device_id, state) else "ignored"
            if leaf == "stats":
                fields = decode_stats(payload)
                if fields["d"] != device_id:
                    return self._dead(topic, payload, "wrong_device", f"stats name {fields['d']}")
                if not self.health.stats(device_id, fields):
                    return self._dead(topic, payload, "unknown_device", f"device {device_id} is not registered")
                if isinstance(fields.get("session"), str):
                    self._stop_if_ended(device_id, fields["session"])
                return "stats"
            return self._pair(topic, device_id, payload)
        except ProtocolError as exc:
            return self._dead(topic, payload, exc.reason, exc.detail)
        except DBAPIError:  # the database is away or busy: the consumer keeps the message and retries it
            raise
        except Exception as exc:  # one bad message never stops a consumer
            log.exception("message on %s failed", topic)
            return self._dead(topic, payload, "internal", f"{type(exc).__name__}: {exc}")

    def handle_batch(self, messages: Sequence[tuple[str, bytes]]) -> list[str | Exception]:
        """Handle messages a consumer received together: every event in one ingest transaction (one commit),
        the other messages each on its own and before the events (so a pairing reaches the events after it).
        Each message's outcome as :meth:`handle` gives it, or the database error that kept it from being handled
        (nothing of it was kept: the consumer tries it again)."""
        results: list[str | Exception] = []
        events: list[tuple[int, str]] = []  # message index, device
        for index, (topic, payload) in enumerate(messages):
            match = DEVICE_MESSAGE.fullmatch(topic)
            if match is not None and match.group(2) == "event":
                events.append((index, match.group(1)))
                results.append("")  # set below
                continue
            try:
                results.append(self.handle(topic, payload))
            except DBAPIError as exc:
                results.append(exc)
        if not events:
            return results
        try:
            outcomes = self.ingestor.handle_batch([messages[i] for i, _ in events], also=self.feed.record_batch)
        except DBAPIError as exc:  # the database is away or busy: none of these events is stored
            for index, _device in events:
                results[index] = exc
            return results
        for (index, device_id), outcome in zip(events, outcomes, strict=True):
            results[index] = self._ingested(device_id, outcome)
        return results

    def _ingested(self, device_id: str, outcome: Outcome) -> str:
        """After the commit: wake the live pages for a proctor alert, note the receipt due; the short outcome."""
        if outcome.extra is not None:
            self.feed.deliver(outcome.extra)
        if self.receipts is not None and outcome.status in ("stored", "duplicate"):
            self.receipts.note(device_id)  # a duplicate too: the unit resent it, its receipt may be lost
        return outcome.status if outcome.status != "dead_letter" else f"dead_letter:{outcome.reason}"

    def replay(self, reason: str, limit: int = 10_000) -> dict[str, int]:
        """Handle the dead letters kept for ``reason`` again (after a fix: ``internal``; after registering a
        device: ``unknown_device``); each is removed unless it is rejected again. Outcome counts; a payload kept
        only in part (over the cap) stays, as ``kept:truncated``."""
        with self.ingestor.store.session() as session:
            rows = session.execute(select(DeadLetter.id, DeadLetter.topic, DeadLetter.payload, DeadLetter.size)
                                   .where(DeadLetter.reason == reason).order_by(DeadLetter.id).limit(limit)).all()
        outcomes: dict[str, int] = {}
        for row_id, topic, payload, size in rows:
            if size is not None and size > len(payload):
                outcomes["kept:truncated"] = outcomes.get("kept:truncated", 0) + 1
                continue
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
            view = self.sessions.pair(device_id, fields["code"], also=self._answer_pairing)
        except (SessionError, ProtocolError) as exc:
            reason = getattr(exc, "reason", "bad_code")
            log.info("pairing of %s refused: %s", device_id, exc)
            if self.commands is not None:
                self.commands.send(device_id, "pair", {"ok": False, "reason": f"{reason}: {exc}"[:200]})
            return f"refused:{reason}"
        log.info("device %s paired with session %s (exam %s, candidate %s)", device_id, view.session_id,
                 view.exam_id, view.candidate_id)
        self.feed.notify()
        return "paired"

    def _answer_pairing(self, session: Session, row: ExamSession) -> None:
        """The pair reply and the retained session_start, in the transaction that pairs (the outbox)."""
        if self.commands is None:
            return
        view = SessionView.of(row)
        assert view.device_id is not None
        self.commands.send(view.device_id, "pair", {"ok": True, "session": view.session_id, "exam": view.exam_id,
                                                    "candidate": view.candidate_id}, session=session)
        self.commands.session_start(view, row.photo, {**self.rules, **(json.loads(row.rules) if row.rules else {})},
                                    session=session)

    def _stop_if_ended(self, device_id: str, session_id: str) -> None:
        """A heartbeat naming a session that is not (or no longer) this unit's: its session_stop was lost on the
        way (a broker that died before saving it); send it again, at most every STOP_AGAIN seconds."""
        now = self.clock()
        if self.commands is None or now - self._stops.get(device_id, -STOP_AGAIN) < STOP_AGAIN:
            return
        own = self._own.get(device_id)
        if own is not None and own[0] == session_id and now - own[1] < STOP_AGAIN:
            return  # found its own at most STOP_AGAIN ago: one read of the session per unit per STOP_AGAIN
        view = self.sessions.get(session_id)
        if view is not None and view.device_id == device_id and (
                view.state != "ended" or self.sessions.clock() - (view.ended_at or 0.0) < STOP_AGAIN):
            self._own[device_id] = (session_id, now)
            return  # its own session, or one ended so recently that the stop may still be on its way
        self._own.pop(device_id, None)
        self._stops[device_id] = now
        log.warning("device %s still runs session %s, which is not its own: sending session_stop again", device_id,
                    session_id)
        self.commands.session_stop(device_id, session_id)
