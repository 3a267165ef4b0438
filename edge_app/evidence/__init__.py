"""Evidence for alerts: a JPEG frame ring in RAM, snapshots and clips on the SD card, quota and retention.

The analysis loop uses :class:`EvidenceRecorder` (see :mod:`edge_app.evidence.recorder`) and catches
:class:`EvidenceError`, sending the alert without evidence when it is raised. The recorder (OpenCV)
loads on first use, so that validating a config does not load it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from edge_app.evidence.config import EvidenceConfig
from edge_app.evidence.errors import EvidenceError

if TYPE_CHECKING:
    from edge_app.evidence.recorder import Evidence, EvidenceRecorder


def __getattr__(name: str) -> Any:
    if name in ("Evidence", "EvidenceRecorder"):
        return getattr(importlib.import_module("edge_app.evidence.recorder"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Evidence", "EvidenceConfig", "EvidenceError", "EvidenceRecorder"]
