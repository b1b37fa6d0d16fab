"""The comparisons ConfigMap: whether `<name>-comparisons` was written, or why not.

`cj_batches.comparisons_written_at`: when the operator wrote the batch's comparisons ConfigMap
(or decided it would not: then `comparisons_blocked_reason` is the condition reason,
ComparisonsTooLarge when the CSV is larger than CJ_OPERATOR_COMPARISONS_MAX_BYTES or
ComparisonsConfigMapNotOwned when the name is taken by a ConfigMap the batch does not own, and
`comparisons_blocked` the message). Batches finished before this revision have neither, so
the operator writes their comparisons ConfigMap after the upgrade.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "cj_batches",
        sa.Column("comparisons_written_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column("cj_batches", sa.Column("comparisons_blocked", sa.Text(), nullable=True))
    op.add_column(
        "cj_batches", sa.Column("comparisons_blocked_reason", sa.String(64), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("cj_batches", "comparisons_blocked_reason")
    op.drop_column("cj_batches", "comparisons_blocked")
    op.drop_column("cj_batches", "comparisons_written_at")
