"""Alembic environment: runs on the connection `cj_operator.migrate` passes in.

`cj_operator.migrate` opens an async connection, takes a PostgreSQL advisory lock and hands
the synchronous side of that connection to Alembic in `config.attributes["connection"]`.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from cj_operator.db.models import Base

config = context.config
connection = config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run the migrations through cj-operator-migrate (cj_operator.migrate)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    compare_type=True,
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
