"""Alembic migrations of the operator's tables (script location `cj_operator.db:migrations`)."""
