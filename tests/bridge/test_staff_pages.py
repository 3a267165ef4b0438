"""The staff's fleet page: staff only, units listed, a code issued from the form and shown once, a unit revoked
with its reason, the audit log below; each action refused with its reason on the page."""

from __future__ import annotations

import re

from cloud_bridge import audit
from tests.bridge.test_web_review import World, world

__all__ = ["world"]  # the fixture, shared with the review pages' tests


def test_staff_see_the_fleet_and_others_are_turned_away(world: World) -> None:
    page = world.client.get("/review/fleet", headers=world.headers["staff"])
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-unit="unit-1"' in text and 'data-unit="unit-2"' in text
    assert "exam-b (cand-b)" in text  # unit-2's session is running
    assert world.client.get("/review/fleet", headers=world.headers["reviewer"]).status_code == 403
    assert world.client.get("/review/fleet", headers=world.headers["proctor_a"]).status_code in (302, 403)
    assert world.client.get("/review/fleet").status_code == 302  # the login form first
    assert 'href="/review/fleet"' in world.client.get("/review", headers=world.headers["staff"]).get_data(True)


def test_a_code_is_issued_from_the_form_and_shown_once(world: World) -> None:
    page = world.client.post("/review/fleet/codes", headers=world.headers["staff"],
                             data={"device_id": "desk-4", "label": "room 12"})
    text = page.get_data(as_text=True)
    shown = re.search(r'id="issued-code">([0-9A-Z-]{14})<', text)
    assert page.status_code == 200 and shown is not None and "for desk-4" in text
    assert shown.group(1) not in world.client.get("/review/fleet", headers=world.headers["staff"]).get_data(True)
    refused = world.client.post("/review/fleet/codes", headers=world.headers["staff"], data={"device_id": "Bad Id"})
    assert refused.status_code == 400 and "No code: device_id must be" in refused.get_data(as_text=True)
    assert world.client.post("/review/fleet/codes", headers=world.headers["reviewer"], data={}).status_code == 403
    issued = [e for e in audit.entries(world.services.store) if e["action"] == "issue_code"]
    assert [(e["actor"], e["detail"]["label"]) for e in issued] == [("staff:root", "room 12")]


def test_a_unit_is_revoked_from_the_page_with_its_reason(world: World) -> None:
    done = world.client.post("/review/fleet/unit-2/revoke", headers=world.headers["staff"],
                             data={"reason": "stolen"})
    assert done.status_code == 303 and done.headers["Location"].endswith("/review/fleet")
    text = world.client.get("/review/fleet", headers=world.headers["staff"]).get_data(as_text=True)
    assert re.search(r'data-unit="unit-2" class="revoked"', text)
    again = world.client.post("/review/fleet/unit-2/revoke", headers=world.headers["staff"], data={"reason": "x"})
    assert again.status_code == 409 and "unit-2 not revoked" in again.get_data(as_text=True)
    assert world.client.post("/review/fleet/unit-9/revoke", headers=world.headers["staff"],
                             data={"reason": "x"}).status_code == 404
    assert world.client.post("/review/fleet/unit-1/revoke", headers=world.headers["reviewer"],
                             data={"reason": "x"}).status_code == 403
    latest = audit.latest(world.services.store, 1)[0]
    assert (latest["action"], latest["target"], latest["actor"]) == ("revoke", "unit-2", "staff:root")


def test_the_audit_log_shows_why_a_login_failed_and_a_lockout(world: World) -> None:
    for password in ["not it"] * 10:  # fleet.staff_lockout_after
        world.client.post("/review/login", data={"username": "rita", "password": password, "next": "/review"})
    world.client.post("/review/login", data={"username": "Mallory!", "password": "x", "next": "/review"})
    text = world.client.get("/review/fleet", headers=world.headers["staff"]).get_data(as_text=True)
    assert "staff:rita · login_failed · rita (wrong_password, 9 in a row)</li>" in text
    assert re.search(r"staff:rita · lockout · rita \(10 in a row, locked until \d+\)</li>", text)
    assert "anonymous · login_failed · (not a user name) (unknown_user)</li>" in text
    assert "Mallory" not in text


def test_a_locked_account_is_listed_and_unlocked_from_the_page(world: World) -> None:
    before = world.client.get("/review/fleet", headers=world.headers["staff"]).get_data(as_text=True)
    assert 'id="locked"' not in before  # nobody is locked
    for _ in range(10):  # fleet.staff_lockout_after
        world.client.post("/review/login", data={"username": "rita", "password": "not it", "next": "/review"})
    text = world.client.get("/review/fleet", headers=world.headers["staff"]).get_data(as_text=True)
    assert re.search(r'<tr data-account="rita">\s*<td>rita</td><td>reviewer</td><td>10</td>', text)
    assert world.client.post("/review/fleet/staff/rita/unlock", headers=world.headers["reviewer"]).status_code == 403
    done = world.client.post("/review/fleet/staff/rita/unlock", headers=world.headers["staff"])
    text = done.get_data(as_text=True)
    assert done.status_code == 200 and "rita unlocked (10 failed logins cleared)." in text
    assert 'data-account="rita"' not in text
    latest = audit.latest(world.services.store, 1)[0]
    assert (latest["action"], latest["target"], latest["actor"]) == ("unlock", "rita", "staff:root")
    missing = world.client.post("/review/fleet/staff/nobody/unlock", headers=world.headers["staff"])
    assert missing.status_code == 404 and "Not unlocked: no staff user nobody" in missing.get_data(as_text=True)
