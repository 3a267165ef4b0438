"""The outbox the link tests publish from."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_app.link.outbox import Outbox


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "outbox.db")
    yield box
    box.close()
