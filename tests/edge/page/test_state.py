"""PageState in one process, and across processes through the mirrored files (FileState)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pydantic import ValidationError

from edge_app.page.config import PageConfig
from edge_app.page.state import FRAME_FILE, STATE_FILE, FileState, PageState
from tests.edge.page.conftest import unit_config


def test_a_waiting_stream_wakes_on_a_new_frame_and_on_close() -> None:
    state = PageState()
    assert state.frame() == (0, None)
    threading.Timer(0.1, state.publish_frame, args=(b"one",)).start()
    assert state.wait_frame(0, timeout=30.0) == (1, b"one")
    threading.Timer(0.1, state.close).start()
    assert state.wait_frame(1, timeout=30.0) == (1, b"one") and state.closed


def test_the_page_process_reads_what_the_unit_mirrors(tmp_path: Path) -> None:
    unit = PageState(mirror=tmp_path / "page")
    page = FileState(tmp_path / "page")
    assert page.frame() == (0, None) and page.snapshot()["placement"] is None
    unit.publish_frame(b"\xff\xd8first")
    unit.publish_placement({"usable": False, "guidance": ["sit down"]})
    unit.update_status(pairing="paired", queue=2)
    unit.add_error("command_refused: session")
    seq, jpeg = page.frame()
    assert (seq, jpeg) == (1, b"\xff\xd8first")
    snap = page.snapshot()
    assert snap["placement"]["guidance"] == ["sit down"] and snap["status"]["queue"] == 2
    assert snap["errors"][0]["text"] == "command_refused: session" and snap["updated"] is not None
    threading.Timer(0.1, unit.publish_frame, args=(b"\xff\xd8second, longer",)).start()
    assert page.wait_frame(seq, timeout=30.0) == (2, b"\xff\xd8second, longer")
    assert sorted(p.name for p in (tmp_path / "page").iterdir()) == [FRAME_FILE, STATE_FILE]  # no temp files


def test_a_page_before_the_unit_has_written_anything_waits_and_ends(tmp_path: Path) -> None:
    page = FileState(tmp_path / "nothing-yet")
    assert page.wait_frame(0, timeout=0.1) == (0, None)
    assert page.frame_age() is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", " ", "example.org"])
def test_the_page_never_listens_on_every_interface(host: str) -> None:
    with pytest.raises(ValidationError):
        PageConfig(host=host)  # type: ignore[call-arg]


def test_the_page_listens_locally_by_default_with_state_under_the_data_dir(tmp_path: Path) -> None:
    config = unit_config(tmp_path)
    assert config.page.host == "127.0.0.1"
    assert config.page.state_path(config.data_dir) == tmp_path / "data" / "page"
    assert unit_config(tmp_path, host="192.168.1.40").page.host == "192.168.1.40"
