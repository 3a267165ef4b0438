"""Staff accounts: scrypt password hashes, logins with expiring bearer tokens, creation audited; the lockout after
too many failed logins in a row (kept in the database, shared by workers), its end, unlocking, and the audit of
every login."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from cloud_bridge import audit
from cloud_bridge.staff import ANONYMOUS, NOT_A_NAME, Staff, StaffError, hash_password, verify_password, wait_words
from cloud_bridge.store import Store
from cloud_bridge.store.models import StaffUser
from tests.bridge.parts import Clock, count

FAST = 10  # scrypt cost in tests (the default is 15)
GOOD = hash_password("correct horse battery", FAST, salt=b"0123456789abcdef")


@pytest.mark.parametrize("password, stored, ok", [
    ("correct horse battery", GOOD, True),
    ("correct horse batterY", GOOD, False),
    ("", GOOD, False),
    ("correct horse battery", GOOD.replace("scrypt$", "bcrypt$"), False),
    ("correct horse battery", "scrypt$10$8$1$!!$!!", False),
    ("correct horse battery", "scrypt$40$8$1$AAAA$AAAA", False),  # a cost out of range is not tried
    ("correct horse battery", "plain", False),
])
def test_verify_password(password: str, stored: str, ok: bool) -> None:
    assert verify_password(password, stored) is ok


def test_a_hash_is_salted() -> None:
    assert hash_password("same password!", FAST) != hash_password("same password!", FAST)


def test_create_login_who_logout(store: Store) -> None:
    clock = Clock()
    staff = Staff(store, session_ttl=600.0, log_n=FAST, clock=clock)
    assert not staff.any()
    staff.create("ana", "a long password", "cli")
    assert staff.any()
    token, expires_at = staff.login("ana", "a long password")
    assert expires_at == clock.now + 600.0
    assert staff.who(token) == "ana"
    assert staff.who(token + "x") is None and staff.who("") is None
    clock.advance(601.0)
    assert staff.who(token) is None  # expired
    token, _ = staff.login("ana", "a long password")
    staff.logout(token)
    assert staff.who(token) is None
    assert [(e["actor"], e["action"], e["target"]) for e in audit.entries(store)] == [
        ("cli", "create_staff", "ana"), ("staff:ana", "login", "ana"), ("staff:ana", "login", "ana")]


@pytest.mark.parametrize("username, password", [("ana", "wrong password!"), ("nobody", "a long password"),
                                                (None, None), ("ana", "")])
def test_login_refuses(store: Store, username: object, password: object) -> None:
    staff = Staff(store, log_n=FAST)
    staff.create("ana", "a long password", "cli")
    with pytest.raises(StaffError) as caught:
        staff.login(username, password)
    assert caught.value.reason == "invalid_credentials"


@pytest.mark.parametrize("username, password, reason", [
    ("A", "a long password", "invalid"), ("has space", "a long password", "invalid"), ("ben", "short", "invalid"),
    (7, "a long password", "invalid"), ("ana", "another long one", "exists"),
])
def test_create_refuses(store: Store, username: object, password: object, reason: str) -> None:
    staff = Staff(store, log_n=FAST)
    staff.create("ana", "a long password", "cli")
    with pytest.raises(StaffError) as caught:
        staff.create(username, password, "staff:ana")
    assert caught.value.reason == reason
    assert len(audit.entries(store)) == 1  # only the first creation


PASSWORD = "a long password"
AFTER, LOCK = 5, 300.0  # the tests' lockout: five failed logins in a row lock an account for five minutes
INVALID, LOCKED = "invalid_credentials", "locked"


def locking_staff(store: Store, clock: Clock) -> Staff:
    staff = Staff(store, log_n=FAST, clock=clock, lockout_after=AFTER, lockout_seconds=LOCK)
    staff.create("ana", PASSWORD, "cli")
    return staff


def attempt(staff: Staff, username: object, password: object) -> str:
    """``ok`` or the refusal's reason."""
    try:
        staff.login(username, password)
    except StaffError as exc:
        return exc.reason
    return "ok"


def row(store: Store, name: str = "ana") -> tuple[int, float | None]:
    with store.session() as session:
        user = session.scalar(select(StaffUser).where(StaffUser.username == name))
        assert user is not None
        return user.failed_logins, user.locked_until


# a step: "R" the right password, "W" a wrong one (each with its answer), or "+S" the clock moves on S seconds
LOCKOUT_CASES = {
    "four failures then a success clear the count": (
        ["W", "W", "W", "W", "R", "W", "W", "W", "W", "R"], [INVALID] * 4 + ["ok"] + [INVALID] * 4 + ["ok"]),
    "the fifth failure locks, the right password is refused": (
        ["W", "W", "W", "W", "W", "R", "W", "R"], [INVALID] * 4 + [LOCKED] * 4),
    "the lock ends after its time": (
        ["W"] * 5 + ["+299", "R", "+1", "R"], [INVALID] * 4 + [LOCKED, LOCKED, "ok"]),
    "a lock that has ended leaves a fresh count": (
        ["W"] * 5 + ["+300"] + ["W"] * 5 + ["R"], [INVALID] * 4 + [LOCKED] + [INVALID] * 4 + [LOCKED, LOCKED]),
    "failures far apart still count": (["W", "+3600"] * 4 + ["W", "R"], [INVALID] * 4 + [LOCKED, LOCKED]),
}


@pytest.mark.parametrize("steps, answers", LOCKOUT_CASES.values(), ids=LOCKOUT_CASES.keys())
def test_lockout(store: Store, clock: Clock, steps: list[str], answers: list[str]) -> None:
    staff = locking_staff(store, clock)
    got = []
    for step in steps:
        if step.startswith("+"):
            clock.advance(float(step[1:]))
        else:
            got.append(attempt(staff, "ana", PASSWORD if step == "R" else "wrong password!"))
    assert got == answers


def test_a_lock_says_how_long_and_is_audited(store: Store, clock: Clock) -> None:
    staff = locking_staff(store, clock)
    for _ in range(AFTER - 1):
        with pytest.raises(StaffError):
            staff.login("ana", "wrong password!", "192.0.2.7")
    assert row(store) == (AFTER - 1, None)
    with pytest.raises(StaffError) as caught:
        staff.login("ana", "wrong password!", "192.0.2.7")
    assert (caught.value.reason, caught.value.retry_after) == (LOCKED, 300)
    assert "locked after 5 failed logins in a row: try again in 5 minutes (300 s)" in str(caught.value)
    assert row(store) == (AFTER, clock.now + LOCK)
    clock.advance(250.5)
    with pytest.raises(StaffError) as caught:
        staff.login("ana", PASSWORD)
    assert (caught.value.reason, caught.value.retry_after) == (LOCKED, 50)
    assert "try again in 50 seconds, or ask staff to unlock it" in str(caught.value)
    assert row(store) == (AFTER, clock.now - 250.5 + LOCK)  # a refusal while locked neither counts nor extends
    entries = [(e["actor"], e["action"], e["target"], e["detail"]) for e in audit.entries(store)][1:]
    failed = [("staff:ana", "login_failed", "ana", {"reason": "wrong_password", "failures": n, "from": "192.0.2.7"})
              for n in range(1, AFTER + 1)]
    assert entries == [*failed, ("staff:ana", "lockout", "ana", {"failures": AFTER, "until": clock.now - 250.5 + LOCK}),
                       ("staff:ana", "login_failed", "ana", {"reason": "locked", "until": clock.now - 250.5 + LOCK})]
    clock.advance(50)
    staff.login("ana", PASSWORD)
    assert row(store) == (0, None)
    assert audit.latest(store, 1)[0]["action"] == "login"


@pytest.mark.parametrize("username, target", [("nobody", "nobody"), ("Not A Name!", NOT_A_NAME),
                                              (None, NOT_A_NAME), ("x" * 100, NOT_A_NAME), ("", NOT_A_NAME)],
                         ids=["free name", "not a name", "none", "too long", "empty"])
def test_unknown_names_answer_as_a_wrong_password_and_never_lock(store: Store, clock: Clock, username: object,
                                                                 target: str) -> None:
    staff = locking_staff(store, clock)
    wrong = pytest.raises(StaffError)
    with wrong:
        staff.login("ana", "wrong password!")
    for _ in range(AFTER + 1):
        with pytest.raises(StaffError) as unknown:
            staff.login(username, PASSWORD)
        assert (unknown.value.reason, str(unknown.value)) == (INVALID, str(wrong.excinfo.value))
    assert count(store, StaffUser) == 1 and row(store) == (1, None)  # nothing made, ana's count untouched
    refused = [(e["actor"], e["target"], e["detail"]) for e in audit.entries(store) if e["actor"] == ANONYMOUS]
    assert refused == [(ANONYMOUS, target, {"reason": "unknown_user"})] * (AFTER + 1)
    assert not [e for e in audit.entries(store) if e["action"] == "lockout"]
    assert attempt(staff, "ana", PASSWORD) == "ok"


def test_unlock_clears_a_lock_and_is_audited(store: Store, clock: Clock) -> None:
    staff = locking_staff(store, clock)
    for _ in range(AFTER):
        attempt(staff, "ana", "wrong password!")
    assert attempt(staff, "ana", PASSWORD) == LOCKED
    assert staff.unlock("ana", "staff:root") == {"username": "ana", "was_locked": True, "failures": AFTER}
    assert attempt(staff, "ana", PASSWORD) == "ok"
    attempt(staff, "ana", "wrong password!")
    assert staff.unlock("ana", "cli") == {"username": "ana", "was_locked": False, "failures": 1}
    assert row(store) == (0, None)
    with pytest.raises(StaffError) as caught:
        staff.unlock("nobody", "cli")
    assert (caught.value.reason, str(caught.value)) == ("not_found", "no staff user nobody")
    unlocks = [(e["actor"], e["target"], e["detail"]) for e in audit.entries(store) if e["action"] == "unlock"]
    assert unlocks == [("staff:root", "ana", {"was_locked": True, "failures": AFTER}),
                       ("cli", "ana", {"was_locked": False, "failures": 1})]


def test_workers_share_the_count_and_lose_no_failure(store: Store, clock: Clock) -> None:
    """Two workers (a store each, as two bridge processes) fail logins at once: every failure counts; the lock
    one makes holds for the other and for a restarted one."""
    locking_staff(store, clock)
    workers = [Staff(Store(store.url), log_n=FAST, clock=clock, lockout_after=40, lockout_seconds=LOCK)
               for _ in range(2)]
    start = threading.Barrier(2)
    answers: list[str] = []

    def fail(staff: Staff) -> None:
        start.wait()
        answers.extend(attempt(staff, "ana", "wrong password!") for _ in range(15))

    try:
        threads = [threading.Thread(target=fail, args=(worker,)) for worker in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert answers == [INVALID] * 30 and row(store) == (30, None)
        failures = sorted(e["detail"]["failures"] for e in audit.entries(store) if e["action"] == "login_failed")
        assert failures == list(range(1, 31))
        for _ in range(10):
            attempt(workers[0], "ana", "wrong password!")
        assert attempt(workers[1], "ana", PASSWORD) == LOCKED
        restarted = Staff(Store(store.url), log_n=FAST, clock=clock)
        assert attempt(restarted, "ana", PASSWORD) == LOCKED
        restarted.store.close()
    finally:
        for worker in workers:
            worker.store.close()


@pytest.mark.parametrize("seconds, words", [(0.2, "1 second"), (40, "40 seconds"), (59.5, "1 minute"),
                                            (60, "1 minute"), (61, "2 minutes"), (900, "15 minutes")])
def test_wait_words(seconds: float, words: str) -> None:
    assert wait_words(seconds) == words


@pytest.mark.parametrize("after, seconds", [(0, 900.0), (10, 0.0), (10, -1.0)])
def test_a_lockout_that_cannot_work_is_refused(store: Store, after: int, seconds: float) -> None:
    with pytest.raises(ValueError, match="lockout_after"):
        Staff(store, lockout_after=after, lockout_seconds=seconds)
