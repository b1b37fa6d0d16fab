"""The Alembic migrations on the real PostgreSQL: upgrade matches the models, downgrade is clean."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from cj_operator.db.models import Base
from cj_operator.migrate import migrate

TABLES = {"cj_batches", "cj_essays", "cj_comparison_pairs", "cj_scores"}


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_upgrade_matches_models_and_downgrade_removes_everything(database_url: str) -> None:
    await migrate(database_url, "upgrade", "head")
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
            assert await conn.run_sync(_tables) >= TABLES
        # Upgrading twice is a no-op.
        await migrate(database_url, "upgrade", "head")
        await migrate(database_url, "downgrade", "base")
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) == {"alembic_version"}
            kinds = await conn.execute(
                text("SELECT count(*) FROM pg_type WHERE typname LIKE 'cj_%'")
            )
            assert kinds.scalar_one() == 0
        await migrate(database_url, "upgrade", "head")
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


def test_console_script_upgrades_and_reports_errors(database_url: str) -> None:
    script = [sys.executable, "-m", "cj_operator.migrate"]
    done = subprocess.run(
        script,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "upgrade to head done" in done.stdout
    broken = database_url.rsplit("/", 1)[0] + "/no_such_database_here"
    failed = subprocess.run(
        script,
        env={**os.environ, "DATABASE_URL": broken},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert failed.returncode == 1
    assert "upgrade to head failed" in failed.stderr
    assert "no_such_database_here" in failed.stderr


async def test_concurrent_upgrades_wait_for_each_other(database_url: str) -> None:
    import asyncio

    await asyncio.gather(*(migrate(database_url) for _ in range(3)))
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()
