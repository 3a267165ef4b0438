"""The unit's own page: placement preview for the candidate, staff functions behind the admin secret.

``create_app(state, config)`` builds the Flask app (:mod:`edge_app.page.app`); the running unit feeds a
:class:`~edge_app.page.state.PageState` (:mod:`edge_app.page.publisher`). Flask is imported on first use
only, so validating a config (:mod:`edge_app.page.config`) does not need it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge_app.page.app import create_app


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from edge_app.page.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["create_app"]
