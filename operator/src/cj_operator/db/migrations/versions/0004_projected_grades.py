"""Projected grades from anchor essays (`cj_operator.scoring.grades`).

`cj_scores.projected_grade`, `grade_low`, `grade_high` (the 95% predictive interval) and
`grade_expected` per essay; `cj_batches.grade_model` the fitted model (anchor grades, anchors,
slope, thresholds) and the distribution of projected grades, as JSON. Written by the final
scoring of a batch whose essays carry `metadata.anchorGrade`.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SCORE_COLUMNS = ("projected_grade", "grade_low", "grade_high", "grade_expected")


def upgrade() -> None:
    for name in _SCORE_COLUMNS:
        op.add_column("cj_scores", sa.Column(name, sa.Double(), nullable=True))
    op.add_column(
        "cj_batches",
        sa.Column("grade_model", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("cj_batches", "grade_model")
    for name in reversed(_SCORE_COLUMNS):
        op.drop_column("cj_scores", name)
