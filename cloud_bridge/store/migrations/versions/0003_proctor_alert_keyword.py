"""The keyword a speech_keyword alert names (never a transcript).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("proctor_alerts") as batch:
        batch.add_column(sa.Column("keyword", sa.String(18), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("proctor_alerts") as batch:
        batch.drop_column("keyword")
