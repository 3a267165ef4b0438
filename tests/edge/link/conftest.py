"""The outbox the link tests publish from, and the links they start."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_app.link.mqtt import MqttLink
from edge_app.link.outbox import Outbox


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "outbox.db")
    yield box
    box.close()


@pytest.fixture
def links() -> Iterator[list[MqttLink]]:
    """Links to stop at the end of the test, whatever happened."""
    started: list[MqttLink] = []
    yield started
    for link in started:
        link.stop(5)
