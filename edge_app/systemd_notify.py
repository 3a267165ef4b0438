"""systemd's notify protocol without a dependency: datagrams to ``$NOTIFY_SOCKET`` (``READY=1``, ``WATCHDOG=1``,
``STATUS=...``, ``STOPPING=1``).

The unit's service is ``Type=notify`` with ``WatchdogSec``: the analysis loop says READY=1 once the models
are loaded and the camera has delivered its first frame, then feeds the watchdog on every turn, so a loop
that stalls stops feeding and systemd restarts the service. Without ``NOTIFY_SOCKET`` (a developer's shell,
the tests) :meth:`Notifier.from_environ` gives None and nothing is sent.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)
FEED_EVERY = 1.0  # seconds: the watchdog is fed at most this often (WatchdogSec is tens of seconds)


class Notifier:
    """Sends notify messages to one socket path (``@name``: an abstract socket); errors are logged, never raised."""

    def __init__(self, address: str) -> None:
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.ready = False
        self.fed_at = -FEED_EVERY

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Notifier | None:
        """A notifier for ``$NOTIFY_SOCKET``; None when systemd did not set one."""
        address = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
        return cls(address) if address.startswith(("/", "@")) else None

    def send(self, *fields: str) -> bool:
        """Send ``KEY=value`` lines in one datagram; False (and a log line) when the socket is unreachable."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall("\n".join(fields).encode())
        except OSError as exc:
            log.warning("systemd notify %s failed: %s", fields[0] if fields else "", exc)
            return False
        return True

    def turn(self, delivered: bool) -> None:
        """One turn of the analysis loop: READY=1 at the first delivered frame, then WATCHDOG=1 at most every
        FEED_EVERY seconds."""
        if delivered and not self.ready:
            self.ready = True
            self.send("READY=1", "STATUS=analysing")
        now = time.monotonic()
        if now - self.fed_at >= FEED_EVERY:
            self.fed_at = now
            self.send("WATCHDOG=1")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")
