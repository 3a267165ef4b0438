"""Outbox exactly once: a QoS 2 row's packet id, chosen and committed before its PUBLISH, the publisher client
whose session holds it, and how far its exchange got (new / published / released).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("packet_id", sa.Integer, nullable=True))
        batch.add_column(sa.Column("publisher", sa.String(64), nullable=True))
        batch.add_column(sa.Column("state", sa.String(10), nullable=False, server_default="new"))
    op.create_index("ix_outbox_publisher_packet_id", "outbox", ["publisher", "packet_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_outbox_publisher_packet_id", "outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("state")
        batch.drop_column("publisher")
        batch.drop_column("packet_id")
