"""edge_app.evidence.storage.purge: the snapshots the bridge names by digest go, with their clips; the rest stay."""

from __future__ import annotations

import hashlib
from pathlib import Path

from edge_app.evidence.storage import purge
from edge_app.protocol import evidence_digest


def snapshot(directory: Path, day: str, alert_id: str, data: bytes, clip: bool = True) -> str:
    (directory / day).mkdir(parents=True, exist_ok=True)
    (directory / day / f"{alert_id}.jpg").write_bytes(data)
    if clip:
        (directory / day / f"{alert_id}.avi").write_bytes(b"RIFF" + data)
    return evidence_digest(hashlib.sha256(data).hexdigest())


def test_named_snapshots_go_with_their_clips_and_others_stay(tmp_path: Path) -> None:
    gone = snapshot(tmp_path, "20270115", "alert-a", b"\xff\xd8 one")
    kept = snapshot(tmp_path, "20270115", "alert-b", b"\xff\xd8 two")
    other_day = snapshot(tmp_path, "20270116", "alert-c", b"\xff\xd8 three", clip=False)
    removed = purge(tmp_path, {gone, other_day, "A" * 22})  # an unknown digest is ignored
    assert sorted(p.name for p in removed) == ["alert-a.avi", "alert-a.jpg", "alert-c.jpg"]
    assert sorted(p.name for p in (tmp_path / "20270115").iterdir()) == ["alert-b.avi", "alert-b.jpg"]
    assert not (tmp_path / "20270116").exists()  # an emptied day folder goes too
    assert purge(tmp_path, {gone}) == []  # again: nothing left to delete
    assert kept not in {gone, other_day}


def test_files_of_other_names_are_never_touched(tmp_path: Path) -> None:
    data = b"\xff\xd8 same bytes"
    digest = snapshot(tmp_path, "20270115", "alert-a", data)
    (tmp_path / "notes.jpg").write_bytes(data)  # not in a day folder
    (tmp_path / "20270115" / "bad name.jpg").write_bytes(data)  # not an alert id
    assert len(purge(tmp_path, {digest})) == 2
    assert (tmp_path / "notes.jpg").exists() and (tmp_path / "20270115" / "bad name.jpg").exists()


def test_a_missing_directory_purges_nothing(tmp_path: Path) -> None:
    assert purge(tmp_path / "none", {"A" * 22}) == []
