"""Staff accounts: scrypt password hashes, logins with expiring bearer tokens, creation audited."""

from __future__ import annotations

import pytest

from cloud_bridge import audit
from cloud_bridge.staff import Staff, StaffError, hash_password, verify_password
from cloud_bridge.store import Store
from tests.bridge.parts import Clock

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
    assert [(e["actor"], e["action"], e["target"]) for e in audit.entries(store)] == [("cli", "create_staff", "ana")]


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
