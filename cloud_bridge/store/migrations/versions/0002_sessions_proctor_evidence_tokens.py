"""Device health columns, order-independent chain checks, exam sessions, proctor alerts, evidence, API tokens.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("mqtt_password_hash", sa.Text(), nullable=True))
        batch.add_column(sa.Column("status_at", sa.Float(), nullable=True))
        batch.add_column(sa.Column("stats", sa.Text(), nullable=True))
        batch.add_column(sa.Column("stats_at", sa.Float(), nullable=True))
        batch.drop_column("last_hash")  # the chain is checked against stored neighbours (cloud_bridge/chain.py)
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("prev_hash", sa.String(32), nullable=False, server_default=""))
        batch.create_index("ix_events_device_seq", ["device_id", "seq"])
    op.create_table(
        "sessions",
        sa.Column("session_id", sa.String(32), primary_key=True),
        sa.Column("exam_id", sa.String(64), nullable=False, index=True),
        sa.Column("candidate_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(12), nullable=False, index=True),
        sa.Column("pairing_code", sa.String(8), nullable=True, unique=True),
        sa.Column("code_expires_at", sa.Float(), nullable=False),
        sa.Column("device_id", sa.String(14), sa.ForeignKey("devices.device_id"), nullable=True, index=True),
        sa.Column("photo", sa.LargeBinary(), nullable=False),
        sa.Column("rules", sa.Text(), nullable=True),
        sa.Column("offline_alert", sa.String(32), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("paired_at", sa.Float(), nullable=True),
        sa.Column("ended_at", sa.Float(), nullable=True),
    )
    op.create_table(
        "proctor_alerts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.session_id"), nullable=False, index=True),
        sa.Column("exam_id", sa.String(64), nullable=False, index=True),
        sa.Column("device_id", sa.String(14), nullable=False),
        sa.Column("event_id", sa.String(32), nullable=True, unique=True),
        sa.Column("alert_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("phase", sa.String(8), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.Column("evidence", sa.String(32), nullable=True),
        sa.Column("flag", sa.String(16), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "evidence",
        sa.Column("digest", sa.String(32), primary_key=True),
        sa.Column("device_id", sa.String(14), nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(12), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    for table in ("api_tokens", "evidence", "proctor_alerts", "sessions"):
        op.drop_table(table)
    with op.batch_alter_table("events") as batch:
        batch.drop_index("ix_events_device_seq")
        batch.drop_column("prev_hash")
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("last_hash", sa.String(32), nullable=False, server_default=""))
        for column in ("stats_at", "stats", "status_at", "mqtt_password_hash"):
            batch.drop_column(column)
