"""Child processes the tools run (the bridge, the unit, brokers): the bridge started until it serves, any
child stopped politely then firmly, the tail of a log."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

SERVING = re.compile(r"bridge serving on (http://[0-9.]+:[0-9]+)")  # what `serve` prints once it listens


def tail(path: Path, chars: int = 3000) -> str:
    """The end of a log, or "" when there is none yet."""
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def stop_process(child: subprocess.Popen[Any] | None, seconds: float = 30.0) -> None:
    """SIGTERM, and SIGKILL when ``child`` has not ended within ``seconds``; nothing for an ended child."""
    if child is None or child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(seconds)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(seconds)


def start_bridge(config: Path, log: Path, cwd: Path, seconds: float = 30.0) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m cloud_bridge serve --config config`` (output appended to ``log``), waited for until it
    prints its address and answers ``/healthz``: the process and that address."""
    seen = log.stat().st_size if log.exists() else 0
    with log.open("ab") as out:
        child = subprocess.Popen([sys.executable, "-m", "cloud_bridge", "serve", "--config", str(config)],
                                 cwd=cwd, stdout=out, stderr=out)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"the bridge exited at start: {tail(log)}")
        serving = SERVING.search(log.read_bytes()[seen:].decode(errors="replace"))
        if serving is not None:
            try:
                with urllib.request.urlopen(serving.group(1) + "/healthz", timeout=5) as response:
                    if response.status == 200:
                        return child, serving.group(1)
            except OSError:
                pass
        time.sleep(0.1)
    stop_process(child)
    raise RuntimeError(f"the bridge did not start serving within {seconds:g} s: {tail(log)}")


def toml_value(value: object) -> str:
    """A TOML value for a config a tool writes: a path or string quoted (JSON's string escapes are TOML's),
    numbers and booleans as they are."""
    return json.dumps(str(value) if isinstance(value, Path) else value)
