"""Review: PC events beside the unit's, reviewer roles and exam assignments, exam policies, reviewers'
decisions (append-only), releases of confirmed sessions' evidence and the record of purges (append-only).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

APPEND_ONLY = ("decisions", "purges")


def sqlite_triggers(table: str) -> list[str]:
    """SQLite: refuse UPDATE and DELETE on ``table``."""
    return [f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END" for verb in ("UPDATE", "DELETE")]


def postgres_triggers(table: str) -> list[str]:
    """PostgreSQL: refuse UPDATE and DELETE on ``table``."""
    return [
        f"CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN RAISE EXCEPTION '{table} is append-only'; END $$",
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()",
    ]


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("pc_token_hash", sa.String(64), nullable=True))
    with op.batch_alter_table("staff_users") as batch:
        batch.add_column(sa.Column("role", sa.String(12), nullable=False, server_default="staff"))
    op.create_table(
        "pc_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.session_id"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("time_ms", sa.BigInteger, nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("received_at", sa.Float, nullable=False),
    )
    op.create_index("ix_pc_events_session_id", "pc_events", ["session_id"])
    op.create_table(
        "exam_assignments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("exam_id", sa.String(64), nullable=False),
        sa.UniqueConstraint("username", "exam_id"),
    )
    op.create_table(
        "exam_policies",
        sa.Column("exam_id", sa.String(64), primary_key=True),
        sa.Column("retention_days", sa.Integer, nullable=False, server_default="30"),
        sa.Column("dismissed_grace_hours", sa.Float, nullable=False, server_default="24"),
        sa.Column("two_reviewers", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("set_at", sa.Float, nullable=False),
        sa.Column("set_by", sa.String(64), nullable=False),
    )
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.session_id"), nullable=False),
        sa.Column("alert_id", sa.String(32), nullable=True),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("reviewer", sa.String(64), nullable=False),
        sa.Column("decided_at", sa.Float, nullable=False),
        sa.Column("supersedes", sa.Integer, nullable=True),
    )
    op.create_index("ix_decisions_session_alert", "decisions", ["session_id", "alert_id"])
    op.create_table(
        "session_releases",
        sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.session_id"), primary_key=True),
        sa.Column("released_by", sa.String(64), nullable=False),
        sa.Column("released_at", sa.Float, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
    )
    op.create_table(
        "purges",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("digest", sa.String(32), nullable=False),
        sa.Column("session_id", sa.String(32), nullable=True),
        sa.Column("device_id", sa.String(14), nullable=False),
        sa.Column("reason", sa.String(24), nullable=False),
        sa.Column("bytes", sa.Integer, nullable=False),
        sa.Column("deleted_at", sa.Float, nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
    )
    op.create_index("ix_purges_digest", "purges", ["digest"])
    dialect = op.get_bind().dialect.name
    for table in APPEND_ONLY:
        statements = {"sqlite": sqlite_triggers, "postgresql": postgres_triggers}.get(dialect)
        for statement in statements(table) if statements else []:
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {table}_append_only()")
    for name in ("purges", "session_releases", "decisions", "exam_policies", "exam_assignments", "pc_events"):
        op.drop_table(name)
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_column("role")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("pc_token_hash")
