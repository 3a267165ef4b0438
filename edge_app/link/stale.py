"""Which of the bridge's session commands are stale, so a late or replayed one cannot undo a newer one.

Two rules. A session this unit has ended (its ``session_stop``, or another session replacing it) never starts
again: a retained ``session_start`` that a broker restored, or that a lost clear left behind, is ignored. The
ended sessions are kept in a small file (written atomically) so the rule holds across restarts. And within a
session, the bridge numbers its commands (``c``, increasing): one numbered at or below a command already
applied for that session is a late copy and is ignored.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from edge_app.atomic import write_bytes_atomic

log = logging.getLogger(__name__)
KEEP = 64  # ended sessions remembered (a unit serves one session at a time, a few a day)


class StaleCommands:
    def __init__(self, path: Path, keep: int = KEEP) -> None:
        self.path, self.keep = path, keep
        self.ended: list[str] = []
        self._session: str | None = None  # the session of the last numbered command applied
        self._number = 0
        try:
            loaded = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
        except (OSError, ValueError) as exc:  # unreadable: start empty rather than refuse every command
            log.warning("ended sessions %s unreadable (%s): starting with none", path, exc)
            loaded = []
        if isinstance(loaded, list):
            self.ended = [s for s in loaded if isinstance(s, str)][-keep:]

    def stale(self, name: str, fields: dict[str, Any]) -> str | None:
        """Why the command is stale, or None when it may be applied."""
        session = fields.get("session")
        if name == "session_start" and session in self.ended:
            return f"session {session} has ended"
        number = fields.get("c")
        if isinstance(number, int) and session == self._session and number <= self._number:
            return f"command {number} of session {session} is not newer than {self._number}"
        return None

    def applied(self, name: str, fields: dict[str, Any]) -> None:
        """Note a command that passed :meth:`stale` (a ``session_stop`` ends its session, current or not)."""
        number, session = fields.get("c"), fields.get("session")
        if isinstance(number, int) and isinstance(session, str):
            if session != self._session:
                self._session, self._number = session, number
            else:
                self._number = max(self._number, number)
        if name == "session_stop" and isinstance(session, str):
            self.end(session)

    def end(self, session: str) -> None:
        """``session`` has ended on this unit: it never starts again."""
        if session in self.ended:
            return
        self.ended = [*self.ended, session][-self.keep:]
        try:
            write_bytes_atomic(self.path, json.dumps(self.ended).encode("ascii"))
        except OSError as exc:  # kept in memory; lost only if the unit restarts before the next write
            log.warning("ended sessions not saved to %s: %s", self.path, exc)
