"""Initial schema: batches, essays, comparison pairs, scores.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cj_batches",
        sa.Column("uid", sa.String(length=64), nullable=False),
        sa.Column("namespace", sa.String(length=253), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "INITIALIZING",
                "GENERATING_PAIRS",
                "WAITING_CALLBACKS",
                "SCORING",
                "COMPLETED",
                "FAILED",
                "CANCELLED",
                name="cj_batch_state",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("suspended", sa.Boolean(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("spec", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("essays_count", sa.Integer(), nullable=False),
        sa.Column("budget", sa.Integer(), nullable=False),
        sa.Column("max_retries", sa.Integer(), nullable=False),
        sa.Column("min_success_rate", sa.Double(), nullable=False),
        sa.Column("max_cost_usd", sa.Double(), nullable=True),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("submitted", sa.Integer(), nullable=False),
        sa.Column("completed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Double(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("total_tokens", sa.BigInteger(), nullable=False),
        sa.Column("reliability", sa.Double(), nullable=True),
        sa.Column("max_score_change", sa.Double(), nullable=True),
        sa.Column("provider", sa.String(length=32), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.String(length=128), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("results_written_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completion_published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "completed + failed <= submitted", name=op.f("ck_cj_batches_answered_le_submitted")
        ),
        sa.CheckConstraint(
            "submitted >= 0 AND completed >= 0 AND failed >= 0", name=op.f("ck_cj_batches_counts")
        ),
        sa.PrimaryKeyConstraint("uid", name=op.f("pk_cj_batches")),
    )
    op.create_index(
        "ix_cj_batches_namespace_name", "cj_batches", ["namespace", "name"], unique=False
    )
    op.create_index("ix_cj_batches_state", "cj_batches", ["state"], unique=False)
    op.create_table(
        "cj_essays",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("batch_uid", sa.String(length=64), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("essay_id", sa.String(length=128), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_uid"],
            ["cj_batches.uid"],
            name=op.f("fk_cj_essays_batch_uid_cj_batches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cj_essays")),
        sa.UniqueConstraint("batch_uid", "essay_id", name="uq_cj_essays_batch_essay_id"),
        sa.UniqueConstraint("batch_uid", "idx", name="uq_cj_essays_batch_idx"),
    )
    op.create_index(op.f("ix_cj_essays_batch_uid"), "cj_essays", ["batch_uid"], unique=False)
    op.create_table(
        "cj_comparison_pairs",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("batch_uid", sa.String(length=64), nullable=False),
        sa.Column("correlation_id", sa.UUID(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("retry_of_id", sa.BigInteger(), nullable=True),
        sa.Column("essay_a_idx", sa.Integer(), nullable=False),
        sa.Column("essay_b_idx", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "PENDING",
                "SUBMITTED",
                "SUCCEEDED",
                "FAILED",
                name="cj_pair_status",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("needs_retry", sa.Boolean(), nullable=False),
        sa.Column("retried", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("winner", sa.String(length=8), nullable=True),
        sa.Column("confidence", sa.Double(), nullable=True),
        sa.Column("justification", sa.Text(), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("provider", sa.String(length=32), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("total_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Double(), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.CheckConstraint("attempt >= 1", name=op.f("ck_cj_comparison_pairs_attempt_positive")),
        sa.CheckConstraint(
            "essay_a_idx <> essay_b_idx", name=op.f("ck_cj_comparison_pairs_distinct_essays")
        ),
        sa.ForeignKeyConstraint(
            ["batch_uid", "essay_a_idx"],
            ["cj_essays.batch_uid", "cj_essays.idx"],
            name="fk_cj_comparison_pairs_essay_a",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["batch_uid", "essay_b_idx"],
            ["cj_essays.batch_uid", "cj_essays.idx"],
            name="fk_cj_comparison_pairs_essay_b",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["batch_uid"],
            ["cj_batches.uid"],
            name="fk_cj_comparison_pairs_batch",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["retry_of_id"],
            ["cj_comparison_pairs.id"],
            name=op.f("fk_cj_comparison_pairs_retry_of_id_cj_comparison_pairs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cj_comparison_pairs")),
        sa.UniqueConstraint("correlation_id", name=op.f("uq_cj_comparison_pairs_correlation_id")),
    )
    op.create_index(
        "ix_cj_comparison_pairs_batch_status",
        "cj_comparison_pairs",
        ["batch_uid", "status"],
        unique=False,
    )
    op.create_index(
        "ix_cj_comparison_pairs_status_submitted_at",
        "cj_comparison_pairs",
        ["status", "submitted_at"],
        unique=False,
    )
    op.create_table(
        "cj_scores",
        sa.Column("batch_uid", sa.String(length=64), nullable=False),
        sa.Column("essay_idx", sa.Integer(), nullable=False),
        sa.Column("score", sa.Double(), nullable=False),
        sa.Column("standard_error", sa.Double(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("comparisons", sa.Integer(), nullable=False),
        sa.Column("wins", sa.Integer(), nullable=False),
        sa.Column("fitted_round", sa.Integer(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["batch_uid", "essay_idx"],
            ["cj_essays.batch_uid", "cj_essays.idx"],
            name="fk_cj_scores_essay",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["batch_uid"], ["cj_batches.uid"], name="fk_cj_scores_batch", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("batch_uid", "essay_idx", name=op.f("pk_cj_scores")),
    )


def downgrade() -> None:
    op.drop_table("cj_scores")
    op.drop_index("ix_cj_comparison_pairs_status_submitted_at", table_name="cj_comparison_pairs")
    op.drop_index("ix_cj_comparison_pairs_batch_status", table_name="cj_comparison_pairs")
    op.drop_table("cj_comparison_pairs")
    op.drop_index(op.f("ix_cj_essays_batch_uid"), table_name="cj_essays")
    op.drop_table("cj_essays")
    op.drop_index("ix_cj_batches_state", table_name="cj_batches")
    op.drop_index("ix_cj_batches_namespace_name", table_name="cj_batches")
    op.drop_table("cj_batches")
