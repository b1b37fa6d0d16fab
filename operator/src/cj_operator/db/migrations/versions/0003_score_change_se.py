"""Score stability in standard errors: `cj_batches.score_change_se`.

The root mean square change of the essays' scores between the last two fits, each divided by
its standard error (`cj_operator.scoring.stopping.score_change_se`); `spec.stopping.
scoreStabilitySE` compares with it. `max_score_change` (logits) stays, for people.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("cj_batches", sa.Column("score_change_se", sa.Double(), nullable=True))


def downgrade() -> None:
    op.drop_column("cj_batches", "score_change_se")
