"""Events: drop the index on ``device_id`` alone. The (device_id, seq) index serves every query by device (its
prefix), and the second one cost every insert an index update and led PostgreSQL's planner, on a table without
statistics yet, to read all of a device's events to find three of them.

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_events_device_id", table_name="events")


def downgrade() -> None:
    op.create_index("ix_events_device_id", "events", ["device_id"])
