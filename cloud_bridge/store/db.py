"""Open a store by URL and bring its schema up to date with the Alembic migrations in this package."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The tables of the store's schema whose rows changed by at least :least since their statistics were taken
# and by at least :grown times the rows they had then (inserts, updates and deletes all count)
GROWN_TABLES = text("SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema() "
                    "AND n_mod_since_analyze >= :least "
                    "AND n_mod_since_analyze >= :grown * GREATEST(n_live_tup - n_mod_since_analyze, 0) "
                    "ORDER BY relname")
LOCK_FIRST = "invigil_lock_first"  # execution option: SQLite transactions that take the write lock up front


def _alembic(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "heads") -> None:
    """Upgrade the database at ``url`` to ``revision`` (every head by default; idempotent)."""
    command.upgrade(_alembic(url), revision)


def private_sqlite_file(url: str) -> Path | None:
    """Create a SQLite database file readable by its owner only (0600; it holds enrolled photos and evidence),
    or take an existing one's group and world bits away; SQLite gives its -wal and -shm files the same mode.
    The file's path, or None for another database (or an in-memory one)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    path = Path(parsed.database)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # the mode applies only if it is created
    try:
        if os.fstat(descriptor).st_mode & 0o077:
            os.fchmod(descriptor, 0o600)
    finally:
        os.close(descriptor)
    for companion in (path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")):
        if companion.exists() and companion.stat().st_mode & 0o077:  # left by an older bridge
            companion.chmod(0o600)
    return path


def _engine(url: str) -> Engine:
    # pre-ping: a PostgreSQL connection may have been dropped (restart, idle timeout); a SQLite file cannot
    engine = create_engine(url, future=True, pool_pre_ping=not url.startswith("sqlite"))
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(connection, _record):  # type: ignore[no-untyped-def]
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _lock_first(connection):  # type: ignore[no-untyped-def]
            # pysqlite begins a transaction only at its first write, so a read-check-write transaction reads a
            # state another worker may change before it writes (and with_for_update means nothing here).
            # BEGIN IMMEDIATE takes the write lock before the first read; pysqlite then issues no BEGIN of its
            # own (the connection is in a transaction) and its commit and rollback end this one.
            if connection.get_execution_options().get(LOCK_FIRST):
                connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Store:
    """The bridge's database: ``Store("sqlite:///bridge.db")`` or a ``postgresql+psycopg://`` URL."""

    def __init__(self, url: str, upgrade: bool = True) -> None:
        private_sqlite_file(url)
        if upgrade:
            migrate(url)
        self.url = url
        self.engine = _engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._locked = sessionmaker(self.engine.execution_options(**{LOCK_FIRST: True}), expire_on_commit=False)
        self._writers: AbstractContextManager[Any] = (
            threading.Lock() if self.engine.dialect.name == "sqlite" else nullcontext())

    def session(self) -> Session:
        return self.sessions()

    def locked_session(self) -> Session:
        """A session whose transactions hold the database's write lock from their start on SQLite (BEGIN
        IMMEDIATE), so one read-check-write runs at a time; on PostgreSQL an ordinary session, where row locks
        (``with_for_update``) serialise what must be."""
        return self._locked()

    @contextmanager
    def write_transaction(self) -> Iterator[Session]:
        """A :meth:`locked_session`'s transaction, committed at the end (rolled back on an error). On SQLite the
        writers of this process also take turns on a lock of their own first: a writer waiting for SQLite's
        lock would poll it with sleeps of up to 100 ms, while one waiting here starts as soon as it is free."""
        with self._writers, self.locked_session() as session, session.begin():
            yield session

    def refresh_statistics(self, least: int = 1000, grown: float = 1.0) -> list[str]:
        """On PostgreSQL, ANALYZE each table that has grown by ``grown`` times its size at its last analysis
        (and by ``least`` rows at least); the tables analysed. A young table otherwise waits for autovacuum's
        turn (up to a minute) while the planner, with no statistics or those of a nearly empty table, reads
        whole tables for a few rows (docs/bridge.md, "Planner statistics"). Past the first doublings this is
        autovacuum's work alone. SQLite needs none: its planner takes an index where one fits."""
        if self.engine.dialect.name != "postgresql":
            return []
        with self.engine.connect() as connection:
            tables = list(connection.scalars(GROWN_TABLES, {"least": least, "grown": grown}))
            for table in tables:  # names from the catalogue, quoted as identifiers
                connection.execute(text(f"ANALYZE {connection.dialect.identifier_preparer.quote(table)}"))
            connection.commit()
        return tables

    def close(self) -> None:
        self.engine.dispose()
