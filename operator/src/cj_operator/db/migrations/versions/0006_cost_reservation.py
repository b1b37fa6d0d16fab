"""Cost reservation: per-comparison estimates and reservations, and late results' cost.

`cj_comparison_pairs.estimate_usd` is a comparison's a-priori cost estimate and
`reserved_usd` what it reserved under the batch's maxCostUSD (held while the row is PENDING or
SUBMITTED); `answer_completed_at` the recorded answer's `completed_at`, which tells a
redelivered event (same call) from a second judge call. `cj_late_results` holds each judge
call that answered a comparison already answered or given up (unique per correlation id and
`completed_at`), and `cj_batches.late_results` / `late_cost_usd` count them (their cost is
in `cost_usd` too). Rows from before this revision have estimate 0 and reserve nothing.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "cj_comparison_pairs",
        sa.Column("estimate_usd", sa.Double(), server_default="0", nullable=False),
    )
    op.add_column(
        "cj_comparison_pairs",
        sa.Column("reserved_usd", sa.Double(), server_default="0", nullable=False),
    )
    op.add_column(
        "cj_comparison_pairs",
        sa.Column("answer_completed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "cj_batches", sa.Column("late_results", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column(
        "cj_batches", sa.Column("late_cost_usd", sa.Double(), server_default="0", nullable=False)
    )
    op.create_table(
        "cj_late_results",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("batch_uid", sa.String(length=64), nullable=False),
        sa.Column("pair_id", sa.BigInteger(), nullable=False),
        sa.Column("correlation_id", sa.UUID(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("cost_usd", sa.Double(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("total_tokens", sa.Integer(), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["batch_uid"],
            ["cj_batches.uid"],
            name="fk_cj_late_results_batch",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pair_id"],
            ["cj_comparison_pairs.id"],
            name="fk_cj_late_results_pair",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_cj_late_results"),
        sa.UniqueConstraint("correlation_id", "completed_at", name="uq_cj_late_results_call"),
    )
    op.create_index("ix_cj_late_results_batch_uid", "cj_late_results", ["batch_uid"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_cj_late_results_batch_uid", table_name="cj_late_results")
    op.drop_table("cj_late_results")
    op.drop_column("cj_batches", "late_cost_usd")
    op.drop_column("cj_batches", "late_results")
    op.drop_column("cj_comparison_pairs", "answer_completed_at")
    op.drop_column("cj_comparison_pairs", "reserved_usd")
    op.drop_column("cj_comparison_pairs", "estimate_usd")
