"""`make bench`: figures printed and written as JSON under build/bench/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edge_app.atomic import write_bytes_atomic


def write_report(report: dict[str, Any], path: Path) -> None:
    """Write a bench report crash-safely (a reader sees the old report or the whole new one) and say so."""
    write_bytes_atomic(path, (json.dumps(report, indent=2) + "\n").encode())
    print(f"wrote {path}")
