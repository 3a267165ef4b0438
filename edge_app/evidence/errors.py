"""The one error evidence raises: the alert goes out without evidence and the loop carries on."""

from __future__ import annotations


class EvidenceError(Exception):
    """Evidence could not be kept (bad input, disabled, disk full, directory not writable); says why."""
