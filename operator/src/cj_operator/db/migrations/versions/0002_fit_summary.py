"""Fit summary: the scale separation reliability beside the empirical-Bayes one, and how many
answers the latest fit used.

`cj_batches.reliability` now holds the empirical-Bayes reliability (it stops batches);
`cj_batches.ssr` the scale separation reliability of the same fit; `cj_batches.fitted_results`
the comparisons with a winner in that fit (score stability is judged only after new ones).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("cj_batches", sa.Column("ssr", sa.Double(), nullable=True))
    op.add_column("cj_batches", sa.Column("fitted_results", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("cj_batches", "fitted_results")
    op.drop_column("cj_batches", "ssr")
