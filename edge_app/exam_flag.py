"""The "an exam is running" flag the unit keeps in its data folder, so an update never starts mid-exam.

The running unit writes ``<data_dir>/exam-running`` (atomically) when a session starts and removes it when the
session ends or the unit stops. The flag names the unit's process: a flag left by a process that has ended (a
crash, a power cut) no longer counts, so it cannot block updates for ever; the restarted unit writes it again if
the bridge resumes the session.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from edge_app.atomic import _alive, write_bytes_atomic

FLAG = "exam-running"
log = logging.getLogger(__name__)


def mark(data_dir: Path, session: str, pid: int | None = None) -> bool:
    """Say that ``session`` is running in this process (or ``pid``); False (logged) when it cannot be written:
    the exam goes on regardless."""
    record = {"session": session, "pid": os.getpid() if pid is None else pid, "since": time.time()}
    try:
        write_bytes_atomic(Path(data_dir) / FLAG, json.dumps(record).encode(), mode=0o644)
    except OSError as exc:
        log.warning("exam-running flag not written: %s", exc)
        return False
    return True


def clear(data_dir: Path) -> None:
    """The exam is over (a failure is logged: a flag whose process has ended does not count anyway)."""
    try:
        (Path(data_dir) / FLAG).unlink(missing_ok=True)
    except OSError as exc:
        log.warning("exam-running flag not removed: %s", exc)


def running(data_dir: Path) -> dict[str, Any] | None:
    """The running exam's record; None when there is none or its process has ended. An unreadable flag counts
    as running (refusing an update is the safe side)."""
    try:
        text = (Path(data_dir) / FLAG).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        return {"session": None, "pid": None, "since": None, "error": str(exc)}
    try:
        record = json.loads(text)
        pid = int(record["pid"])
    except (ValueError, KeyError, TypeError):
        return {"session": None, "pid": None, "since": None, "error": "unreadable flag"}
    return record if _alive(pid) else None
