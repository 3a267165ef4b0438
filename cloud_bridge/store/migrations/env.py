"""Alembic environment: runs the migrations online against the configured URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from cloud_bridge.store.models import Base

config = context.config
connectable = create_engine(config.get_main_option("sqlalchemy.url") or "")
with connectable.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()
connectable.dispose()
