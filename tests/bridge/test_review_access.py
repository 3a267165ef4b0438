"""Reviewer roles and exam assignments on SQLite and PostgreSQL: staff see every exam, a reviewer only the
assigned ones; assignments are audited and only reviewer accounts take them."""

from __future__ import annotations

import pytest

from cloud_bridge import audit
from cloud_bridge.review_access import AccessError, assign, reviewers, staff_viewer, unassign, visible_exams
from cloud_bridge.sessions import Sessions
from cloud_bridge.staff import Staff, StaffError
from cloud_bridge.store import Store
from tests.bridge.parts import PHOTO

PASSWORD = "correct horse battery"


def test_a_reviewer_sees_only_assigned_exams_and_staff_see_all(store: Store, sessions: Sessions) -> None:
    staff = Staff(store, log_n=10)
    staff.create("root", PASSWORD, "cli")
    staff.create("rita", PASSWORD, "staff:root", role="reviewer")
    for exam in ("math-101", "physics-2"):
        sessions.create(exam, "cand-1", PHOTO)
    rita = staff_viewer(store, "rita")
    assert rita is not None and rita.exams == frozenset() and visible_exams(store, rita) == []
    assert assign(store, "rita", "math-101", "staff:root") is True
    assert assign(store, "rita", "math-101", "staff:root") is False  # already
    rita = staff_viewer(store, "rita")
    assert rita is not None and rita.sees("math-101") and not rita.sees("physics-2") and rita.decides
    assert visible_exams(store, rita) == ["math-101"]
    root = staff_viewer(store, "root")
    assert root is not None and root.exams is None and visible_exams(store, root) == ["math-101", "physics-2"]
    assert reviewers(store, "math-101") == ["rita"]
    assert unassign(store, "rita", "math-101", "staff:root") is True
    assert unassign(store, "rita", "math-101", "staff:root") is False
    assert staff_viewer(store, "rita").exams == frozenset()  # type: ignore[union-attr]
    logged = [(e["actor"], e["target"], e["detail"]) for e in audit.entries(store) if e["action"] == "assign"]
    assert logged == [("staff:root", "math-101", {"reviewer": "rita", "assigned": True}),
                      ("staff:root", "math-101", {"reviewer": "rita", "assigned": False})]


def test_only_reviewer_accounts_are_assigned_and_roles_are_checked(store: Store) -> None:
    staff = Staff(store, log_n=10)
    staff.create("root", PASSWORD, "cli")
    with pytest.raises(StaffError, match="role"):
        staff.create("x1", PASSWORD, "cli", role="admin")
    for name, exam, reason in (("root", "math-101", "not_found"), ("ghost", "math-101", "not_found"),
                               ("root", "bad exam!", "invalid")):
        with pytest.raises(AccessError) as refused:
            assign(store, name, exam, "staff:root")
        assert refused.value.reason == reason
    assert staff_viewer(store, "ghost") is None
