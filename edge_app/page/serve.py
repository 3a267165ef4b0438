"""``python -m edge_app page --config FILE``: the unit's page as its own unprivileged process (waitress).

It reads what the running unit mirrors into ``[page] state_dir`` (:class:`~edge_app.page.state.FileState`)
and listens on ``[page] host`` (127.0.0.1 unless the config names the LAN interface's address; never every
interface) and ``port``. It needs no models, no camera and no root: it reads the state folder and writes only
pairing codes (data_dir) and requests (``[page] requests_dir``).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from flask import Flask

from edge_app.config import load_for_service
from edge_app.page.state import PageState

log = logging.getLogger(__name__)


def make_server(app: Flask, host: str, port: int, threads: int) -> Any:
    """A waitress server for the page (``run()`` serves until :func:`stop_server`)."""
    from waitress.server import create_server

    return create_server(app, host=host, port=port, threads=threads, channel_timeout=60,
                         channel_request_lookahead=1, ident="invigil-unit")


def stop_server(server: Any, state: PageState, timeout: float = 5.0) -> None:
    """End the open previews and every connection, so that ``run()`` returns and the worker threads end."""
    from waitress import wasyncore

    state.close()

    def close_all() -> None:
        wasyncore.close_all(server._map)

    try:
        server.trigger.pull_trigger(close_all)  # in the loop's thread: no race with its poll()
    except OSError:  # the loop has ended already
        close_all()
    server.task_dispatcher.shutdown(timeout=timeout)


def serve(path: Path) -> int:
    from edge_app.page import create_app
    from edge_app.page.state import FileState

    config = load_for_service(path)
    if config is None:
        return 2
    state = FileState(config.page.state_path(config.data_dir))
    app = create_app(state, config)
    try:
        server = make_server(app, config.page.host, config.page.port, config.page.threads)
    except OSError as exc:
        print(f"error: page: cannot listen on {config.page.host}:{config.page.port}: {exc}", file=sys.stderr)
        return 2

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping the page", signum)
        threading.Thread(target=stop_server, args=(server, state), daemon=True).start()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    print(f"the unit's page on http://{config.page.host}:{server.effective_port}/", file=sys.stderr, flush=True)
    server.run()
    return 0
