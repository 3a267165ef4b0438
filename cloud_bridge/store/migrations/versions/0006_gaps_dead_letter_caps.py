"""Gap records with their reason, and dead letters capped (size and hash of the whole) and tallied.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dead_letters") as batch:
        batch.add_column(sa.Column("size", sa.Integer, nullable=True))
        batch.add_column(sa.Column("sha256", sa.String(64), nullable=True))
    op.create_table(
        "dead_letter_tallies",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(14), nullable=False),
        sa.Column("reason", sa.String(24), nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("kept", sa.BigInteger, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("first_at", sa.Float, nullable=False),
        sa.Column("last_at", sa.Float, nullable=False),
        sa.UniqueConstraint("source", "reason"),
    )
    op.create_table(
        "gaps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.String(14), sa.ForeignKey("devices.device_id"), nullable=False, index=True),
        sa.Column("reason", sa.String(24), nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("first_seq", sa.BigInteger, nullable=True),
        sa.Column("last_seq", sa.BigInteger, nullable=True),
        sa.Column("first_at", sa.Float, nullable=True),
        sa.Column("last_at", sa.Float, nullable=True),
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.Column("found_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("gaps")
    op.drop_table("dead_letter_tallies")
    with op.batch_alter_table("dead_letters") as batch:
        batch.drop_column("sha256")
        batch.drop_column("size")
