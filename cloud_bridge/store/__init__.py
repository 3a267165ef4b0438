"""The bridge's store: SQLAlchemy 2 models, Alembic migrations, SQLite by default, PostgreSQL by URL."""

from cloud_bridge.store.db import Store, migrate

__all__ = ["Store", "migrate"]
