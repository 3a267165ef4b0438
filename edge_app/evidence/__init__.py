"""Evidence for alerts: a JPEG frame ring in RAM, snapshots and clips on the SD card, quota and retention.

The analysis loop uses :class:`EvidenceRecorder` (see :mod:`edge_app.evidence.recorder`) and catches
:class:`EvidenceError`, sending the alert without evidence when it is raised.
"""

from edge_app.evidence.config import EvidenceConfig
from edge_app.evidence.errors import EvidenceError
from edge_app.evidence.recorder import Evidence, EvidenceRecorder

__all__ = ["Evidence", "EvidenceConfig", "EvidenceError", "EvidenceRecorder"]
