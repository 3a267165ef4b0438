"""Decisions on SQLite and PostgreSQL: superseded never edited (the database refuses UPDATE and DELETE),
audited, and under the two-reviewer policy a confirmation counts once a second reviewer confirms."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, update
from sqlalchemy.exc import DBAPIError

from cloud_bridge import audit
from cloud_bridge.decisions import AWAITING, DecisionError, Decisions, status_of
from cloud_bridge.store import Store
from cloud_bridge.store.models import Decision, ExamPolicy
from tests.bridge.parts import T0
from tests.bridge.review_parts import paired_session


def test_a_new_decision_supersedes_the_last_and_both_stay(store: Store) -> None:
    scene = paired_session(store)
    alert = scene.unit.alert(T0 + 5, T0 + 20)
    decisions = Decisions(store, clock=lambda: T0 + 1000)
    first = decisions.decide(scene.session_id, alert, "second_look", "not sure", "ann", "staff:ann")
    second = decisions.decide(scene.session_id, alert, "dismissed", "a calculator", "bob", "staff:bob")
    whole = decisions.decide(scene.session_id, None, "dismissed", "", "bob", "staff:bob")
    assert (first.supersedes, second.supersedes, whole.supersedes) == (None, first.id, None)
    statuses = decisions.statuses(scene.session_id, "math-101")
    assert statuses[alert].status == "dismissed" and [d.verdict for d in statuses[alert].history] == [
        "second_look", "dismissed"]
    assert statuses[None].status == "dismissed"
    logged = [e for e in audit.entries(store) if e["action"] == "decide"]
    assert [(e["actor"], e["target"], e["detail"]["verdict"]) for e in logged] == [
        ("staff:ann", scene.session_id, "second_look"), ("staff:bob", scene.session_id, "dismissed"),
        ("staff:bob", scene.session_id, "dismissed")]


def test_the_database_refuses_to_change_or_remove_a_decision(store: Store) -> None:
    scene = paired_session(store)
    Decisions(store).decide(scene.session_id, None, "confirmed", "", "ann", "staff:ann")
    for statement in (update(Decision).values(verdict="dismissed"), delete(Decision)):
        with pytest.raises(DBAPIError, match="append-only"), store.session() as session, session.begin():
            session.execute(statement)
    assert Decisions(store).statuses(scene.session_id, "math-101")[None].status == "confirmed"


def test_bad_verdicts_notes_and_alerts_are_refused(store: Store) -> None:
    scene = paired_session(store)
    decisions = Decisions(store)
    cases: list[tuple[str, str | None, str, str, str]] = [
        (scene.session_id, None, "guilty", "", "invalid"), (scene.session_id, None, "confirmed", "x" * 5000, "invalid"),
        (scene.session_id, "no-such-alert", "confirmed", "", "not_found"), ("nope", None, "confirmed", "", "not_found")]
    for session_id, alert_id, verdict, note, reason in cases:
        with pytest.raises(DecisionError) as refused:
            decisions.decide(session_id, alert_id, verdict, note, "ann", "staff:ann")
        assert refused.value.reason == reason


def test_two_reviewers_a_confirmation_awaits_a_second_different_reviewer(store: Store) -> None:
    scene = paired_session(store)
    alert = scene.unit.alert(T0 + 5, T0 + 20)
    with store.session() as session, session.begin():
        session.add(ExamPolicy(exam_id="math-101", two_reviewers=True, set_at=T0, set_by="staff:root"))
    decisions = Decisions(store)

    def status() -> str:
        return decisions.statuses(scene.session_id, "math-101")[alert].status

    decisions.decide(scene.session_id, alert, "confirmed", "phone in hand", "ann", "staff:ann")
    assert status() == AWAITING
    decisions.decide(scene.session_id, alert, "confirmed", "again", "ann", "staff:ann")  # the same reviewer
    assert status() == AWAITING
    decisions.decide(scene.session_id, alert, "confirmed", "agree", "bob", "staff:bob")
    assert status() == "confirmed"
    assert decisions.statuses(scene.session_id, "math-101")[alert].confirmed_by == ("ann", "bob")
    decisions.decide(scene.session_id, alert, "dismissed", "on second thought", "bob", "staff:bob")
    assert status() == "dismissed"
    decisions.decide(scene.session_id, alert, "confirmed", "no, it is", "carl", "staff:carl")
    assert status() == AWAITING  # confirmations before the dismissal no longer count


def test_status_of_one_reviewer_policy_counts_one_confirmation() -> None:
    assert status_of([], False).status == "undecided"
