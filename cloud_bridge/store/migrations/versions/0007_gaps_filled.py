"""Gaps filled: a flagged hole's events that arrived after all, and when the last of them did.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gaps") as batch:
        batch.add_column(sa.Column("filled", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("filled_at", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gaps") as batch:
        batch.drop_column("filled_at")
        batch.drop_column("filled")
