"""API tokens on SQLite and PostgreSQL: created once with a role, only a hash kept, revoked by label."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from cloud_bridge.store import Store
from cloud_bridge.store.models import ApiToken
from cloud_bridge.tokens import Tokens


def test_a_token_has_its_role_and_only_its_hash_is_kept(store: Store) -> None:
    tokens = Tokens(store)
    assert not tokens.any()
    client, proctor = tokens.create("client", "exam pc 1"), tokens.create("proctor", "alice", ["exam-1"])
    assert client != proctor and len(client) >= 40
    assert (tokens.role(client), tokens.role(proctor)) == ("client", "proctor")
    assert tokens.any()
    with store.session() as session:
        rows = session.scalars(select(ApiToken)).all()
    assert {row.label for row in rows} == {"exam pc 1", "alice"}
    assert all(len(row.token_hash) == 64 and row.token_hash not in (client, proctor) for row in rows)


@pytest.mark.parametrize("presented", ["", "x", "a" * 201, "\ud800", "Bearer "])
def test_anything_else_has_no_role(store: Store, presented: str) -> None:
    tokens = Tokens(store)
    real = tokens.create("client", "pc")
    assert tokens.role(presented) is None
    assert tokens.role(real[:-1]) is None and tokens.role(real + "x") is None


def test_allows_checks_the_role(store: Store) -> None:
    tokens = Tokens(store)
    proctor = tokens.create("proctor", "alice", ["exam-1"])
    assert tokens.allows(proctor, ["proctor"]) and tokens.allows(proctor, ("client", "proctor"))
    assert not tokens.allows(proctor, ["client"]) and not tokens.allows("nope", ["client", "proctor"])


def test_revoking_by_label(store: Store) -> None:
    tokens = Tokens(store)
    first, second, other = tokens.create("client", "pc"), tokens.create("client", "pc"), tokens.create("client", "x")
    assert tokens.revoke("pc") == 2
    assert tokens.role(first) is None and tokens.role(second) is None and tokens.role(other) == "client"
    assert tokens.revoke("nobody") == 0
    tokens.revoke("x")
    assert not tokens.any()


def test_an_unknown_role_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="role must be one of"):
        Tokens(store).create("admin", "root")
    assert not Tokens(store).any()


def test_long_labels_are_cut(store: Store) -> None:
    tokens = Tokens(store)
    tokens.create("client", "L" * 100)
    assert tokens.revoke("L" * 64) == 1


def test_a_proctor_token_sees_the_exams_it_names_only(store: Store) -> None:
    tokens = Tokens(store)
    grant = tokens.grant(tokens.create("proctor", "alice", ["exam-2", "exam-1", "exam-2"]))
    assert grant is not None and grant.exams == {"exam-1", "exam-2"}
    assert grant.sees("exam-1") and not grant.sees("exam-3")
    client = tokens.grant(tokens.create("client", "pc"))
    assert client is not None and client.exams == frozenset() and client.sees("exam-3")  # it creates sessions
    assert tokens.grant("nope") is None


@pytest.mark.parametrize(("role", "exams", "problem"), [
    ("proctor", [], "must name the exams"),
    ("proctor", ["exam 1"], "not exam ids"),
    ("proctor", ["x" * 65], "not exam ids"),
    ("client", ["exam-1"], "names no exams"),
])
def test_exam_scopes_are_checked(store: Store, role: str, exams: list[str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Tokens(store).create(role, "x", exams)
    assert not Tokens(store).any()
