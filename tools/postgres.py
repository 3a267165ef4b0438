"""The machine's PostgreSQL (127.0.0.1:5432, trust auth, database ``test``) in throwaway schemas, for tests,
benches and the scale runs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
UNREACHABLE = "PostgreSQL at 127.0.0.1:5432 (database test) is not reachable"


class NoPostgres(RuntimeError):
    """The server does not answer (the message says how)."""


@contextmanager
def postgres_schema(prefix: str) -> Iterator[str]:
    """A new schema ``<prefix>_<random>``, dropped afterwards; yields the database URL that uses it.
    Raises :class:`NoPostgres` when the server cannot be reached."""
    schema, admin = f"{prefix}_{uuid.uuid4().hex[:12]}", create_engine(POSTGRES)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        admin.dispose()
        raise NoPostgres(f"{UNREACHABLE}: {exc}"[:300]) from exc
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
