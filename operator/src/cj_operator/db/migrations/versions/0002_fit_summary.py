"""Fit summary: both reliabilities, the answers the fit used, the order effect and misfit.

`cj_batches.reliability` now holds the empirical-Bayes reliability (it stops batches);
`cj_batches.ssr` the scale separation reliability of the same fit; `cj_batches.fitted_results`
the comparisons with a winner in that fit (score stability is judged only after new ones);
`order_effect`, `order_effect_se`, `order_effect_p` the slot-A effect (logits) with its standard
error and p value; `judge_fit` infit/outfit per judge (JSON list); `cj_scores.infit` and
`cj_scores.outfit` per essay. `cj_batches.provider` and `model` go: a batch's judge is the one
its spec names (results could claim any), and each comparison keeps the judge that answered.
`cj_batches.results_blocked`: why the results ConfigMap could not be written (its name was
taken by a ConfigMap the batch does not own). `cj_comparison_pairs.retry_not_before`: a failed
comparison is re-submitted only after it (backoff, or the provider's Retry-After).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("cj_batches", sa.Column("ssr", sa.Double(), nullable=True))
    op.add_column("cj_batches", sa.Column("fitted_results", sa.Integer(), nullable=True))
    op.add_column("cj_batches", sa.Column("order_effect", sa.Double(), nullable=True))
    op.add_column("cj_batches", sa.Column("order_effect_se", sa.Double(), nullable=True))
    op.add_column("cj_batches", sa.Column("order_effect_p", sa.Double(), nullable=True))
    op.add_column(
        "cj_batches",
        sa.Column("judge_fit", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column("cj_batches", sa.Column("results_blocked", sa.Text(), nullable=True))
    op.drop_column("cj_batches", "provider")
    op.drop_column("cj_batches", "model")
    op.add_column(
        "cj_comparison_pairs",
        sa.Column("retry_not_before", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column("cj_scores", sa.Column("infit", sa.Double(), nullable=True))
    op.add_column("cj_scores", sa.Column("outfit", sa.Double(), nullable=True))


def downgrade() -> None:
    op.drop_column("cj_comparison_pairs", "retry_not_before")
    op.drop_column("cj_scores", "outfit")
    op.drop_column("cj_scores", "infit")
    for column in ("judge_fit", "order_effect_p", "order_effect_se", "order_effect"):
        op.drop_column("cj_batches", column)
    op.drop_column("cj_batches", "results_blocked")
    op.drop_column("cj_batches", "fitted_results")
    op.add_column("cj_batches", sa.Column("provider", sa.String(length=32), nullable=True))
    op.add_column("cj_batches", sa.Column("model", sa.String(length=200), nullable=True))
    op.drop_column("cj_batches", "ssr")
