"""Routing of device messages on SQLite and PostgreSQL: every leaf, the pairing exchange with its signed
commands, and a dead letter with a reason for everything unusable."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from cloud_bridge.dispatch import DeviceCommands, Dispatcher
from cloud_bridge.health import Health
from cloud_bridge.ingest import Ingestor
from cloud_bridge.proctor import ProctorFeed
from cloud_bridge.services import Services
from cloud_bridge.sessions import Sessions, SessionView
from cloud_bridge.store import Store
from cloud_bridge.store.models import DeadLetter, EventRow, ProctorAlert
from edge_app.protocol import ProtocolError, b64, canonical, device_topic, new_event_id
from edge_app.protocol.commands import encode_stats, open_signed, seal
from edge_app.protocol.transport import status_payload
from tests.bridge.parts import (
    BRIDGE_KEY,
    DEVICE_KEY,
    OTHER_KEY,
    PHOTO,
    T0,
    Clock,
    Published,
    count,
    event_payloads,
    register,
)

BRIDGE_PUBLIC = BRIDGE_KEY.public_key()
CONFIG_RULES: dict[str, object] = {"preset": "relaxed", "phone": {"min_duration": 2.0}}


@dataclass
class Bridge:
    store: Store
    clock: Clock
    published: Published
    sessions: Sessions
    feed: ProctorFeed
    dispatcher: Dispatcher

    def handle(self, device_id: str, leaf: str, payload: bytes) -> str:
        return self.dispatcher.handle(device_topic(device_id, leaf), payload)

    def commands(self, device_id: str, name: str) -> list[tuple[dict[str, object] | None, bool]]:
        """The commands ``name`` sent to the device, opened with the bridge's public key, and their retain flags
        (None for an empty payload: a cleared retained message)."""
        out: list[tuple[dict[str, object] | None, bool]] = []
        for _topic, payload, qos, retain in self.published.on(device_topic(device_id, f"cmd/{name}")):
            assert qos == 1
            out.append((open_signed(name, payload, BRIDGE_PUBLIC) if payload else None, retain))
        return out

    def dead_letters(self) -> list[tuple[str, str]]:
        with self.store.session() as session:
            return [(row.topic, row.reason) for row in session.scalars(select(DeadLetter).order_by(DeadLetter.id))]


def build(store: Store, publish: Published | None = None) -> Bridge:
    clock, published = Clock(), publish or Published()
    sessions = Sessions(store, clock=clock)
    feed = ProctorFeed(store, published, clock)
    dispatcher = Dispatcher(Ingestor(store, clock), sessions, feed, Health(store, feed, 30.0, clock),
                            DeviceCommands(feed.outbox, BRIDGE_KEY, clock), CONFIG_RULES, clock=clock)
    return Bridge(store, clock, published, sessions, feed, dispatcher)


@pytest.fixture
def bridge(store: Store) -> Bridge:
    register(store, "unit-1")
    register(store, "unit-2", OTHER_KEY)
    return build(store)


def pair_request(code: str, device_id: str = "unit-1", key=DEVICE_KEY) -> bytes:  # type: ignore[no-untyped-def]
    return seal("pair_request", {"d": device_id, "code": code, "via": "qr"}, key, int(T0 * 1000))


SESSION_RULES = '{"phone":{"min_duration":1.0},"gaze_away":{"min_duration":4}}'


def waiting(bridge: Bridge, rules: str | None = SESSION_RULES) -> SessionView:
    return bridge.sessions.create("math-101", "cand-7", PHOTO, rules)


def test_a_pair_request_pairs_and_sends_a_signed_reply_and_a_retained_start(bridge: Bridge) -> None:
    view = waiting(bridge)
    assert bridge.handle("unit-1", "pair", pair_request(view.pairing_code or "")) == "paired"
    assert bridge.sessions.active_for_device("unit-1").session_id == view.session_id  # type: ignore[union-attr]
    (reply, reply_retained), = bridge.commands("unit-1", "pair")
    assert reply is not None and not reply_retained
    assert {k: reply[k] for k in ("ok", "session", "exam", "candidate")} == {
        "ok": True, "session": view.session_id, "exam": "math-101", "candidate": "cand-7"}
    (start, start_retained), = bridge.commands("unit-1", "session_start")
    assert start is not None and start_retained  # a unit that reconnects or restarts learns its session
    assert (start["session"], start["exam"], start["candidate"]) == (view.session_id, "math-101", "cand-7")
    assert base64.urlsafe_b64decode(str(start["photo"]) + "==") == PHOTO
    assert start["rules"] == {"preset": "relaxed", "phone": {"min_duration": 1.0}, "gaze_away": {"min_duration": 4}}
    assert [t for t, *_ in bridge.published.messages] == [device_topic("unit-1", "cmd/pair"),
                                                           device_topic("unit-1", "cmd/session_start")]
    assert bridge.dead_letters() == []


def test_the_start_carries_the_config_rules_when_the_session_has_none(bridge: Bridge) -> None:
    view = waiting(bridge, rules=None)
    bridge.handle("unit-1", "pair", pair_request(view.pairing_code or ""))
    (start, _), = bridge.commands("unit-1", "session_start")
    assert start is not None and start["rules"] == CONFIG_RULES


@pytest.mark.parametrize("case", ["unknown_code", "expired_code", "used_code", "device_busy"])
def test_a_refused_pairing_is_answered_with_the_reason(bridge: Bridge, case: str) -> None:
    view = waiting(bridge)
    code = view.pairing_code or ""
    if case == "unknown_code":
        code = "ZZZZZZZZ" if code != "ZZZZZZZZ" else "YYYYYYYY"
    elif case == "expired_code":
        bridge.clock.advance(901)
    elif case == "used_code":
        bridge.handle("unit-2", "pair", pair_request(code, "unit-2", OTHER_KEY))
    else:
        other = bridge.sessions.create("math-101", "cand-8", PHOTO)
        bridge.handle("unit-1", "pair", pair_request(other.pairing_code or ""))
    bridge.published.messages.clear()
    expected = "unknown_code" if case == "used_code" else case
    assert bridge.handle("unit-1", "pair", pair_request(code)) == f"refused:{expected}"
    (reply, _), = bridge.commands("unit-1", "pair")
    assert reply is not None and reply["ok"] is False and str(reply["reason"]).startswith(f"{expected}: ")
    assert "session" not in reply
    assert bridge.commands("unit-1", "session_start") == []
    assert bridge.dead_letters() == []


@pytest.mark.parametrize(("device_id", "make", "reason"), [
    ("unit-1", lambda code: pair_request(code, "unit-1", OTHER_KEY), "bad_signature"),  # forged: not unit-1's key
    ("unit-1", lambda code: pair_request(code, "unit-1", BRIDGE_KEY), "bad_signature"),
    ("unit-2", lambda code: pair_request(code, "unit-1", OTHER_KEY), "wrong_device"),  # unit-2 naming unit-1
    ("unit-9", lambda code: pair_request(code, "unit-9"), "unknown_device"),
    ("unit-1", lambda code: b"{not json", "malformed"),
    ("unit-1", lambda code: b"[]", "malformed"),
    ("unit-1", lambda code: canonical({"v": 1, "id": new_event_id(), "t": 1, "d": "unit-1", "code": code}),
     "malformed"),  # unsigned
    ("unit-1", lambda code: b" " * 600, "oversized"),
    ("unit-1", lambda code: pair_request(code).replace(b'"v":1', b'"v":2'), "unknown_version"),
])
def test_unusable_pair_requests_are_dead_letters(bridge: Bridge, device_id: str, make, reason: str) -> None:  # type: ignore[no-untyped-def]
    view = waiting(bridge)
    payload = make(view.pairing_code or "")
    assert bridge.handle(device_id, "pair", payload) == f"dead_letter:{reason}"
    assert bridge.dead_letters() == [(device_topic(device_id, "pair"), reason)]
    assert bridge.published.messages == []  # no reply to a message that is not the device's
    assert bridge.sessions.get(view.session_id).state == "waiting"  # type: ignore[union-attr]


def test_a_device_event_is_stored_and_becomes_an_alert_when_paired(bridge: Bridge) -> None:
    first, second = event_payloads(2)
    assert bridge.handle("unit-1", "event", first) == "stored"
    assert bridge.feed.alerts("math-101") == []  # not paired yet
    view = waiting(bridge)
    bridge.handle("unit-1", "pair", pair_request(view.pairing_code or ""))
    assert bridge.handle("unit-1", "event", second) == "stored"
    assert bridge.handle("unit-1", "event", second) == "duplicate"
    alerts = bridge.feed.alerts("math-101")
    assert [(a["session"], a["kind"], a["phase"]) for a in alerts] == [(view.session_id, "phone", "start")]
    assert count(bridge.store, EventRow) == 2


def test_an_event_and_its_proctor_alert_are_stored_in_one_transaction(bridge: Bridge) -> None:
    view = waiting(bridge)
    bridge.handle("unit-1", "pair", pair_request(view.pairing_code or ""))
    payload = event_payloads(1)[0]

    def dies_after_recording(session: Any, stored: Any) -> None:
        bridge.feed.record_batch(session, stored)
        raise RuntimeError("the worker died here")

    outcome = Ingestor(bridge.store).handle(device_topic("unit-1", "event"), payload, also=dies_after_recording)
    assert (outcome.status, outcome.reason) == ("dead_letter", "internal")
    assert count(bridge.store, EventRow) == 0 and count(bridge.store, ProctorAlert) == 0  # neither, not one
    assert bridge.handle("unit-1", "event", payload) == "stored"  # the broker delivers it again
    assert bridge.handle("unit-1", "event", payload) == "duplicate"
    assert count(bridge.store, EventRow) == 1 and count(bridge.store, ProctorAlert) == 1
    assert len(bridge.feed.alerts("math-101")) == 1


def test_event_dead_letters_keep_their_reason(bridge: Bridge) -> None:
    assert bridge.handle("unit-1", "event", b"\x00") == "dead_letter:malformed"
    assert bridge.handle("unit-1", "event", event_payloads(1, key=OTHER_KEY)[0]) == "dead_letter:bad_signature"
    assert bridge.handle("unit-9", "event", event_payloads(1, "unit-9")[0]) == "dead_letter:unknown_device"
    assert [r for _, r in bridge.dead_letters()] == ["malformed", "bad_signature", "unknown_device"]


def test_status_births_wills_and_clears(bridge: Bridge) -> None:
    view = waiting(bridge)
    bridge.handle("unit-1", "pair", pair_request(view.pairing_code or ""))
    assert bridge.handle("unit-1", "status", status_payload("online", 1)) == "status"
    assert bridge.handle("unit-1", "status", status_payload("offline")) == "status"
    assert bridge.handle("unit-1", "status", b"") == "ignored"  # a cleared retained status
    assert bridge.handle("unit-9", "status", status_payload("online", 1)) == "ignored"  # not registered
    assert bridge.handle("unit-1", "status", b'{"state":"asleep"}') == "dead_letter:malformed"
    assert bridge.handle("unit-1", "status", b"\xff") == "dead_letter:malformed"
    assert bridge.feed.alerts("math-101") == []  # offline for less than the grace: no alarm yet (health tests)
    assert bridge.handle("unit-1", "stats", encode_stats({"d": "unit-1", "fps": 3.0}, 1)) == "stats"
    assert bridge.feed.alerts("math-101") == []


@pytest.mark.parametrize(("device_id", "payload", "outcome"), [
    ("unit-1", encode_stats({"d": "unit-1", "fps": 3.0, "queue": 2}, 1), "stats"),
    ("unit-1", encode_stats({"d": "unit-2"}, 1), "dead_letter:wrong_device"),
    ("unit-9", encode_stats({"d": "unit-9"}, 1), "dead_letter:unknown_device"),
    ("unit-1", b'{"v":1,"d":"unit-1"}', "dead_letter:malformed"),  # no id or t
    ("unit-1", b"fps=3", "dead_letter:malformed"),
    ("unit-1", canonical({"v": 1, "id": b64(bytes(16)), "t": 1, "d": "unit-1", "fps": -3}), "dead_letter:malformed"),
    ("unit-1", b"{" + b" " * 600 + b"}", "dead_letter:oversized"),
    ("unit-1", encode_stats({"d": "unit-1"}, 1).replace(b'"v":1', b'"v":7'), "dead_letter:unknown_version"),
])
def test_stats(bridge: Bridge, device_id: str, payload: bytes, outcome: str) -> None:
    assert bridge.handle(device_id, "stats", payload) == outcome
    assert len(bridge.dead_letters()) == (1 if outcome.startswith("dead_letter") else 0)


@pytest.mark.parametrize("topic", [
    "invigil/v1/dev/unit-1/cmd/pair",  # the bridge's own commands are not device messages
    "invigil/v1/dev/unit-1/evidence",
    "invigil/v1/dev/Unit-1/event",
    "invigil/v1/dev/unit-1/event/x",
    "invigil/v1/dev/unit-1/event\n",
    "invigil/v2/dev/unit-1/event",
    "invigil/v1/proctor/math-101/alerts",
    "",
])
def test_other_topics_are_dead_letters(bridge: Bridge, topic: str) -> None:
    assert bridge.dispatcher.handle(topic, event_payloads(1)[0]) == "dead_letter:bad_topic"
    assert bridge.dead_letters() == [(topic, "bad_topic")]


def test_a_failing_publish_loses_no_command_the_outbox_sends_it_later(store: Store) -> None:
    class Flaky(Published):
        broken = True

        def __call__(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
            if self.broken:
                raise OSError("not connected")
            super().__call__(topic, payload, qos, retain)

    register(store, "unit-1")
    flaky = Flaky()
    bridge = build(store, flaky)
    view = waiting(bridge)
    assert bridge.handle("unit-1", "pair", pair_request(view.pairing_code or "")) == "paired"
    assert bridge.handle("unit-1", "event", event_payloads(1)[0]) == "stored"
    assert flaky.messages == [] and bridge.feed.outbox.pending() == 3  # pair, session_start, the proctor alert
    flaky.broken = False
    bridge.clock.advance(bridge.feed.outbox.stale_after)
    bridge.feed.outbox.poll()  # the relay: unsent rows nobody publishes go out, oldest first
    assert [t.rsplit("/", 1)[1] for t, *_ in flaky.messages] == ["pair", "session_start", "alerts"]
    bridge.feed.outbox.poll()
    assert bridge.feed.outbox.pending() == 0


def test_session_stop_clears_the_retained_start_and_sends_stop(bridge: Bridge) -> None:
    view = waiting(bridge)
    bridge.handle("unit-1", "pair", pair_request(view.pairing_code or ""))
    bridge.published.messages.clear()
    commands = DeviceCommands(bridge.feed.outbox, BRIDGE_KEY, bridge.clock)
    commands.session_stop("unit-1", view.session_id)
    cleared, stop = bridge.published.messages
    assert cleared == (device_topic("unit-1", "cmd/session_start"), b"", 1, True)
    assert stop[0] == device_topic("unit-1", "cmd/session_stop") and stop[2:] == (1, False)
    assert open_signed("session_stop", stop[1], BRIDGE_PUBLIC)["session"] == view.session_id


def test_commands_are_signed_with_the_bridge_key_only(bridge: Bridge) -> None:
    DeviceCommands(bridge.feed.outbox, BRIDGE_KEY, bridge.clock).send("unit-1", "session_stop", {"session": "s1"})
    (_topic, payload, _qos, _retain), = bridge.published.messages
    assert json.loads(payload)["t"] == int(T0 * 1000)
    with pytest.raises(ProtocolError) as caught:
        open_signed("session_stop", payload, DEVICE_KEY.public_key())
    assert caught.value.reason == "bad_signature"


def test_a_database_that_is_away_is_raised_for_the_consumer_to_retry_not_dead_lettered() -> None:
    away = Store("postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2", upgrade=False)
    services = Services.build(away)
    with pytest.raises(DBAPIError):  # the consumer keeps the message unacknowledged and retries it
        services.dispatcher.handle(device_topic("unit-1", "event"), event_payloads(1)[0])
    away.close()


def test_dead_letters_of_a_reason_can_be_replayed_once_the_cause_is_gone(bridge: Bridge) -> None:
    payloads = event_payloads(2, device_id="unit-3")
    assert [bridge.handle("unit-3", "event", p) for p in payloads] == ["dead_letter:unknown_device"] * 2
    bridge.handle("unit-1", "event", b"not json")
    register(bridge.store, "unit-3")  # staff register the unit afterwards
    assert bridge.dispatcher.replay("unknown_device") == {"stored": 2}
    assert bridge.dispatcher.replay("unknown_device") == {}
    assert bridge.dispatcher.replay("malformed") == {"dead_letter:malformed": 1}  # rejected again: kept
    with bridge.store.session() as session:
        assert [r.reason for r in session.scalars(select(DeadLetter))] == ["malformed"]
    assert count(bridge.store, EventRow) == 2


def test_a_heartbeat_naming_an_ended_session_stops_it_again_and_its_own_is_read_once_a_while(
        bridge: Bridge, monkeypatch: pytest.MonkeyPatch) -> None:
    view = waiting(bridge)
    assert bridge.handle("unit-1", "pair", pair_request(view.pairing_code or "")) == "paired"
    reads: list[str] = []
    original = bridge.sessions.get
    monkeypatch.setattr(bridge.sessions, "get", lambda sid: reads.append(sid) or original(sid))
    beat = encode_stats({"d": "unit-1", "session": view.session_id}, 1)
    for _ in range(5):  # heartbeats of its own running session: nothing sent, one read
        assert bridge.handle("unit-1", "stats", beat) == "stats"
        bridge.clock.advance(5)
    assert len(reads) == 1 and bridge.commands("unit-1", "session_stop") == []
    bridge.sessions.end(view.session_id)  # its session_stop lost on the way (nothing sent here)
    bridge.clock.advance(60)
    assert bridge.handle("unit-1", "stats", beat) == "stats"  # still names it: stopped again
    assert [(payload or {}).get("session") for payload, _r in bridge.commands("unit-1", "session_stop")] == [
        view.session_id]
    assert bridge.handle("unit-1", "stats", beat) == "stats"  # at most every STOP_AGAIN seconds
    assert len(bridge.commands("unit-1", "session_stop")) == 1
