"""Retention (cloud_bridge/retention.py): the planner on a table of constructed cases with the time passed in, and
the executor on SQLite and PostgreSQL: dismissed evidence goes after its grace, confirmed evidence stays until the
session is released, every purge is logged (purges, audit) and the unit is told (a signed evidence_purge)."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import select

from cloud_bridge.audit import entries
from cloud_bridge.retention import DAY, HOUR, Policy, Retention, RetentionConfig, Snapshot, Verdict, plan
from cloud_bridge.services import Services
from cloud_bridge.sessions import Sessions
from cloud_bridge.store import Store
from cloud_bridge.store.models import Decision, Evidence, ExamPolicy, OutboxMessage, Purge, SessionRelease
from edge_app.protocol import Event, chain_hash, device_topic, encode_event, evidence_digest, new_event_id
from edge_app.protocol.commands import open_signed
from tests.bridge.parts import BRIDGE_KEY, DEVICE_KEY, PHOTO, T0, Clock, Published

DEFAULT = Policy(retention_days=30, dismissed_grace_hours=24)
ENDED = T0  # the session's end in the table


def snap(alert: str | None = "a1", session: str | None = "s1", ended: float | None = ENDED) -> Snapshot:
    return Snapshot(f"dig-{alert}", "unit-1", 1000, ENDED - 3600, session, alert, "exam-1" if session else None,
                    ended if session else None)


def dec(verdict: str, alert: str | None = "a1", at: float = ENDED + HOUR, number: int = 1) -> Verdict:
    return Verdict(number, "s1", alert, verdict, at)


CASES = [
    # (name, snapshot, decisions, released, now - ENDED, policy, expected reason or None)
    ("undecided, within retention", snap(), [], False, 29 * DAY, DEFAULT, None),
    ("undecided, past retention", snap(), [], False, 31 * DAY, DEFAULT, "retention"),
    ("dismissed, within grace", snap(), [dec("dismissed")], False, HOUR + 23 * HOUR, DEFAULT, None),
    ("dismissed, grace over", snap(), [dec("dismissed")], False, HOUR + 24 * HOUR, DEFAULT, "dismissed"),
    ("dismissed then confirmed", snap(), [dec("dismissed"), dec("confirmed", at=ENDED + 2 * HOUR, number=2)],
     False, 5 * DAY, DEFAULT, None),
    ("confirmed then dismissed", snap(), [dec("confirmed"), dec("dismissed", at=ENDED + 2 * HOUR, number=2)],
     False, 5 * DAY, DEFAULT, "dismissed"),
    ("confirmed, past retention", snap(), [dec("confirmed")], False, 400 * DAY, DEFAULT, None),
    ("confirmed, released, past retention", snap(), [dec("confirmed")], True, 31 * DAY, DEFAULT, "retention"),
    ("confirmed, released, within retention", snap(), [dec("confirmed")], True, 10 * DAY, DEFAULT, None),
    ("session confirmed as a whole holds its alerts", snap(), [dec("confirmed", alert=None)], False, 400 * DAY,
     DEFAULT, None),
    ("session dismissed as a whole: an undecided alert", snap(), [dec("dismissed", alert=None)], False, 2 * DAY,
     DEFAULT, "dismissed"),
    ("the alert's own verdict before the session's", snap(), [dec("dismissed", alert=None),
                                                              dec("confirmed", number=2)], False, 2 * DAY, DEFAULT,
     None),
    ("another alert's dismissal", snap(), [dec("dismissed", alert="a2")], False, 2 * DAY, DEFAULT, None),
    ("second look is not a hold", snap(), [dec("second_look")], False, 31 * DAY, DEFAULT, "retention"),
    ("session not ended", snap(ended=None), [], False, 400 * DAY, DEFAULT, None),
    ("exam policy: short retention", snap(), [], False, 3 * DAY, Policy(2, 24), "retention"),
    ("exam policy: no grace", snap(), [dec("dismissed")], False, HOUR, Policy(30, 0), "dismissed"),
    ("no session, recent", snap(alert=None, session=None), [], False, 29 * DAY, DEFAULT, None),
    ("no session, old", snap(alert=None, session=None), [], False, 31 * DAY, DEFAULT, "retention"),
]


@pytest.mark.parametrize(("snapshot", "decisions", "released", "after", "policy", "expected"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_the_planner(snapshot: Snapshot, decisions: list[Verdict], released: bool, after: float, policy: Policy,
                     expected: str | None) -> None:
    doomed = plan([snapshot], decisions, {"exam-1": policy}, ["s1"] if released else [], ENDED + after, DEFAULT)
    assert [d.reason for d in doomed] == ([expected] if expected else [])
    for item in doomed:
        assert (item.digest, item.bytes, item.device_id) == (snapshot.digest, 1000, "unit-1") and item.why


def test_an_exam_without_a_policy_gets_the_default() -> None:
    assert [d.reason for d in plan([snap()], [], {}, [], ENDED + 31 * DAY, DEFAULT)] == ["retention"]
    assert plan([snap()], [], {}, [], ENDED + 31 * DAY, Policy(60, 24)) == []


# -- the executor, on the stores --------------------------------------------------------------------------------

def _session_with_snapshots(store: Store, sessions: Sessions, alerts: int) -> tuple[str, list[tuple[str, str]]]:
    """A paired session whose unit raised ``alerts`` alerts, each with an uploaded snapshot; then ended.
    Its (alert id, digest) pairs."""
    services = Services.build(store)
    view = sessions.create("exam-1", "cand-1", PHOTO)
    sessions.pair("unit-1", view.pairing_code or "")
    previous, pairs, payloads = "", [], []
    for seq in range(1, alerts + 1):
        data = b"\xff\xd8 snapshot %d" % seq
        digest = evidence_digest(hashlib.sha256(data).hexdigest())
        event = Event(event_id=new_event_id(), device_id="unit-1", seq=seq, time_ms=int(T0 * 1000) + seq,
                      kind="phone", phase="start", severity="critical", confidence=0.9, prev_hash=previous,
                      evidence=digest)
        payload = encode_event(event, DEVICE_KEY)
        previous = chain_hash(payload)
        payloads.append(payload)
        pairs.append((event.event_id, digest))
    assert services.dispatcher.handle_batch([(device_topic("unit-1", "event"), p) for p in payloads]) == \
        ["stored"] * alerts
    with store.session() as session, session.begin():
        session.add_all(Evidence(digest=digest, device_id="unit-1", content_type="image/jpeg",
                                 data=b"\xff\xd8 snapshot %d" % n, uploaded_at=T0)
                        for n, (_alert, digest) in enumerate(pairs, start=1))
    sessions.end(view.session_id)
    return view.session_id, pairs


def _decide(store: Store, session_id: str, alert_id: str | None, verdict: str, at: float) -> None:
    with store.session() as session, session.begin():
        session.add(Decision(session_id=session_id, alert_id=alert_id, verdict=verdict, note="", reviewer="rev",
                             decided_at=at))


def _left(store: Store) -> set[str]:
    with store.session() as session:
        return set(session.scalars(select(Evidence.digest)))


def test_purge_keeps_confirmed_removes_dismissed_and_a_release_lets_retention_take_it(
        store: Store, sessions: Sessions, clock: Clock) -> None:
    session_id, pairs = _session_with_snapshots(store, sessions, 3)
    (confirmed, kept_c), (dismissed, gone_d), (_undecided, kept_u) = pairs
    _decide(store, session_id, confirmed, "confirmed", T0 + HOUR)
    _decide(store, session_id, dismissed, "dismissed", T0 + HOUR)
    published = Published()
    services = Services.build(store, published, BRIDGE_KEY)
    retention = Retention(store, services.commands, RetentionConfig(batch=2))
    assert retention.purge(now=T0 + 2 * HOUR).purged == []  # within the grace: nothing yet
    result = retention.purge(now=T0 + 26 * HOUR)
    assert [(d.digest, d.reason) for d in result.purged] == [(gone_d, "dismissed")]
    assert _left(store) == {kept_c, kept_u}

    with store.session() as session:
        purge = session.scalars(select(Purge)).one()
        assert (purge.digest, purge.session_id, purge.device_id, purge.reason, purge.by) == (
            gone_d, session_id, "unit-1", "dismissed", "sweep")
        assert purge.bytes == len(b"\xff\xd8 snapshot 2")
        command = session.scalars(select(OutboxMessage).where(
            OutboxMessage.topic == device_topic("unit-1", "cmd/evidence_purge"))).one()
    fields = open_signed("evidence_purge", command.payload, BRIDGE_KEY.public_key(), to="unit-1")
    assert fields["digests"] == [gone_d]
    logged = [e for e in entries(store) if e["action"] == "purge"]
    assert len(logged) == 1 and logged[0]["actor"] == "sweep" and logged[0]["detail"]["reasons"] == {"dismissed": 1}

    past = clock.now + 31 * DAY  # the session ended at the clock's time
    assert [(d.digest, d.reason) for d in retention.purge(now=past).purged] == [(kept_u, "retention")]
    assert _left(store) == {kept_c}  # confirmed: held past retention
    with store.session() as session, session.begin():
        session.add(SessionRelease(session_id=session_id, released_by="chair", released_at=past, note="appeal over"))
    assert [(d.digest, d.reason) for d in retention.purge(by="chair", now=past).purged] == [(kept_c, "retention")]
    assert _left(store) == set()
    with store.session() as session:
        assert sorted(p.reason for p in session.scalars(select(Purge))) == ["dismissed", "retention", "retention"]
        assert session.scalars(select(Purge.by).where(Purge.digest == kept_c)).one() == "chair"
    assert [e["actor"] for e in entries(store) if e["action"] == "purge"] == ["sweep", "sweep", "staff:chair"]


def test_a_session_confirmed_as_a_whole_is_held_and_an_exam_policy_applies(
        store: Store, sessions: Sessions, clock: Clock) -> None:
    session_id, pairs = _session_with_snapshots(store, sessions, 2)
    _decide(store, session_id, None, "confirmed", T0 + HOUR)
    with store.session() as session, session.begin():
        session.add(ExamPolicy(exam_id="exam-1", retention_days=1, dismissed_grace_hours=1, two_reviewers=False,
                               set_at=T0, set_by="staff"))
    retention = Retention(store, None)  # no broker: nothing for the units, the purge itself still happens
    assert retention.purge(now=clock.now + 2 * DAY).purged == []  # past the exam's 1 day, but held
    assert _left(store) == {digest for _alert, digest in pairs}
    _decide(store, session_id, None, "dismissed", clock.now + 2 * DAY)  # supersedes the confirmation
    soon = retention.plan(clock.now + 2 * DAY + 0.5 * HOUR)  # within the exam's 1 h grace; retention is over
    assert {d.reason for d in soon} == {"retention"}
    assert {d.reason for d in retention.purge(now=clock.now + 2 * DAY + HOUR).purged} == {"dismissed"}
    assert _left(store) == set()


def test_the_sweep_runs_on_its_interval(store: Store) -> None:
    ticks = [0.0]
    retention = Retention(store, None, RetentionConfig(every=60), monotonic=lambda: ticks[0])
    assert retention.maybe_run() is None  # not yet due
    ticks[0] = 61.0
    assert retention.maybe_run() is not None  # due: it ran (nothing to purge)
    ticks[0] = 62.0
    assert retention.maybe_run() is None  # the next one is 60 s away


def test_the_config_section() -> None:
    from cloud_bridge.config import parse

    config = parse({"mqtt": {"host": "127.0.0.1"}, "retention": {"every": 600, "retention_days": 7}}, environ={})
    assert (config.retention.every, config.retention.retention_days, config.retention.dismissed_grace_hours) == (
        600, 7, 24)
    assert json.loads(config.model_dump_json())["retention"]["batch"] == 200
