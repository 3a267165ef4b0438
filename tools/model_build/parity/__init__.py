"""Parity gates: the int8 model must keep the float model's answers on real photos.

One module per model (``parity/<model>.py``) with ``check(float_path, int8_path, photos) -> ParityResult``
and ``MANIFEST`` (input spec, output decoding, labels). Runs in the project environment with the
device's own inference code, so the gate checks exactly what the device will run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ParityResult:
    passed: bool
    figures: dict[str, Any]
    failures: list[str] = field(default_factory=list)
