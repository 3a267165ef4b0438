"""Bridge stores for tests: PostgreSQL in a throwaway schema of the machine's server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from cloud_bridge.store import Store
from tests.need import need
from tools.postgres import NoPostgres, postgres_schema


@contextmanager
def postgres_store(prefix: str = "t") -> Iterator[Store]:
    """A Store in a new schema (dropped afterwards); skipped, or failed in CI, without a server."""
    with ExitStack() as stack:
        try:
            url = stack.enter_context(postgres_schema(prefix))
        except NoPostgres as exc:
            need(False, str(exc))
        opened = Store(url)
        try:
            yield opened
        finally:
            opened.close()
