"""The one shape of a request the bridge refuses: a short ``reason`` code (for clients, dead letters and tests),
a sentence for people, and the HTTP ``status`` the API answers with (create_app turns it into JSON)."""

from __future__ import annotations


class Refused(ValueError):
    def __init__(self, reason: str, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.reason, self.status = reason, status
