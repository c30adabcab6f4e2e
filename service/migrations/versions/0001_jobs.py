"""The jobs table.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "devicefit_jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("study_name", sa.String(200), nullable=False),
        sa.Column("storage_url", sa.Text, nullable=False),
        sa.Column("task_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_devicefit_jobs_status", "devicefit_jobs", ["status"])
    op.create_index("ix_devicefit_jobs_created_at", "devicefit_jobs", ["created_at"])


def downgrade() -> None:
    op.drop_table("devicefit_jobs")
