"""The exams a proctor token may see; evidence looked up by the alerts that carry it.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # proctor tokens made before this revision name no exam: they see nothing until re-created with --exam
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("exams", sa.Text(), nullable=True))
    op.create_index("ix_proctor_alerts_evidence", "proctor_alerts", ["evidence"])


def downgrade() -> None:
    op.drop_index("ix_proctor_alerts_evidence", "proctor_alerts")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("exams")
