"""Stale session commands: an ended session never starts again (across restarts); late numbered copies lose."""

from __future__ import annotations

from pathlib import Path

from edge_app.link.stale import StaleCommands


def test_an_ended_session_never_starts_again_even_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "ended.json"
    stale = StaleCommands(path)
    start = {"session": "s-1", "exam": "e", "candidate": "c", "c": 5}
    assert stale.stale("session_start", start) is None
    stale.applied("session_start", start)
    stale.applied("session_stop", {"session": "s-1", "c": 6})
    assert stale.stale("session_start", start) == "session s-1 has ended"
    assert stale.stale("session_start", {**start, "c": 99}) is not None  # whatever its number
    assert StaleCommands(path).stale("session_start", start) is not None  # kept in the file
    assert stale.stale("session_start", {**start, "session": "s-2"}) is None


def test_a_numbered_command_at_or_below_the_last_applied_of_its_session_is_stale(tmp_path: Path) -> None:
    stale = StaleCommands(tmp_path / "ended.json")
    stale.applied("thresholds", {"session": "s-1", "rules": {}, "c": 7})
    assert stale.stale("thresholds", {"session": "s-1", "rules": {}, "c": 6}) is not None
    assert stale.stale("template", {"session": "s-1", "photo": "", "c": 7}) is not None
    assert stale.stale("thresholds", {"session": "s-1", "rules": {}, "c": 8}) is None
    assert stale.stale("thresholds", {"session": "s-2", "rules": {}, "c": 1}) is None  # another session
    assert stale.stale("thresholds", {"session": "s-1", "rules": {}}) is None  # unnumbered: not judged


def test_the_memory_is_bounded_and_an_unreadable_file_is_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "ended.json"
    stale = StaleCommands(path, keep=3)
    for n in range(5):
        stale.end(f"s-{n}")
    assert StaleCommands(path, keep=3).ended == ["s-2", "s-3", "s-4"]
    path.write_text("{not json")
    assert StaleCommands(path).ended == []
