"""Judge panels: `cj_comparison_pairs.judge_idx`, which `spec.judges[]` member answers a pair.

0 for a batch with a single `spec.judge`; a retry keeps its pair's judge.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "cj_comparison_pairs",
        sa.Column("judge_idx", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_column("cj_comparison_pairs", "judge_idx")
