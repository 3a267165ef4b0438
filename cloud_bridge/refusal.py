"""The one shape of a request the bridge refuses: a short ``reason`` code (for clients, dead letters and tests),
a sentence for people, and the HTTP ``status`` the API answers with (create_app turns it into JSON)."""

from __future__ import annotations

from collections.abc import Iterable


class Refused(ValueError):
    def __init__(self, reason: str, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.reason, self.status = reason, status


def refuse_unknown(fields: Iterable[object], allowed: set[str], error: type[Refused] = Refused) -> None:
    """``error`` ("invalid", naming them) when ``fields`` holds names outside ``allowed``."""
    unknown = set(fields) - allowed
    if unknown:
        raise error("invalid", f"unknown fields: {', '.join(sorted(map(str, unknown)))}")
