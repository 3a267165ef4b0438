"""The exam-running flag: written by the connected unit while a session runs (real broker, signed commands), and
ignored once the process that wrote it has ended."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from edge_app import exam_flag
from tests.edge.test_connected import (  # noqa: F401  (its fixtures, used here)
    SESSION,
    BridgeSide,
    Unit,
    bridge,
    bridge_key,
    make_unit,
    models,
)


def test_a_flag_counts_while_its_process_lives(tmp_path: Path) -> None:
    assert exam_flag.running(tmp_path) is None
    assert exam_flag.mark(tmp_path, "s-9")
    record = exam_flag.running(tmp_path)
    assert record is not None and record["session"] == "s-9" and record["pid"] == os.getpid()
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                           check=True)
    exam_flag.mark(tmp_path, "s-9", pid=int(ended.stdout))
    assert exam_flag.running(tmp_path) is None  # a crashed unit's flag blocks nothing
    (tmp_path / exam_flag.FLAG).write_text("{broken")
    assert exam_flag.running(tmp_path) == {"session": None, "pid": None, "since": None, "error": "unreadable flag"}
    exam_flag.clear(tmp_path)
    exam_flag.clear(tmp_path)  # twice is fine
    assert not (tmp_path / exam_flag.FLAG).exists()
    (tmp_path / "blocked").write_text("")
    assert exam_flag.mark(tmp_path / "blocked", "s") is False  # a file where the folder should be: logged only


def test_the_connected_unit_flags_its_running_session(make_unit: Callable[..., Unit],  # noqa: F811
                                                       bridge: BridgeSide) -> None:  # noqa: F811
    unit = make_unit()
    unit.start()
    data = unit.config.data_dir
    bridge.command("session_start", SESSION)
    unit.apply()
    flag = json.loads((data / exam_flag.FLAG).read_text())
    assert flag["session"] == SESSION["session"] and flag["pid"] == os.getpid()
    bridge.command("session_stop", {"session": SESSION["session"]})
    unit.apply()
    assert unit.states()[-1] == "session_stopped" and exam_flag.running(data) is None
    bridge.command("session_start", {**SESSION, "session": "s-3"})
    unit.apply()
    assert exam_flag.running(data) is not None
    unit.device.stop()  # the unit stops (SIGTERM): no exam runs on it any more
    assert not (data / exam_flag.FLAG).exists()
