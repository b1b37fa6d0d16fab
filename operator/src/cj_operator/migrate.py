"""``cj-operator-migrate``: bring the operator's PostgreSQL schema to a revision (default head).

Runs Alembic on one connection holding a transaction-scoped PostgreSQL advisory lock, so
several replicas (or a Job and a starting operator) never migrate at the same time. The
operator calls `upgrade` at start-up when CJ_OPERATOR_MIGRATE_ON_START is true.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from importlib.resources import files

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

ADVISORY_LOCK_KEY = 0x434A4F50  # "CJOP": one fixed key for the operator's schema
"""The pg_advisory_xact_lock key migrations hold."""


def alembic_config() -> Config:
    """Alembic configuration pointing at the migrations shipped in the package."""
    config = Config()
    config.set_main_option("script_location", str(files("cj_operator.db") / "migrations"))
    return config


def _run(connection: Connection, action: str, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    if action == "upgrade":
        command.upgrade(config, revision)
    else:
        command.downgrade(config, revision)


async def migrate(database_url: str, action: str = "upgrade", revision: str = "head") -> None:
    """Upgrade (or downgrade) the schema at `database_url` to `revision`, under the lock.

    Raises the database's errors (connection refused, a failing migration); a failed
    migration rolls back as a whole (one transaction).
    """
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
            )
            await conn.run_sync(_run, action, revision)
    finally:
        await engine.dispose()


async def upgrade(database_url: str) -> None:
    """`alembic upgrade head` on `database_url`, under the advisory lock."""
    await migrate(database_url, "upgrade", "head")


def main(argv: list[str] | None = None) -> int:
    """Console entry point: ``cj-operator-migrate [upgrade|downgrade] [REVISION]``.

    Reads DATABASE_URL (see OperatorSettings). Exit 0 on success, 1 with the error on stderr.
    """
    from cj_operator.settings import OperatorSettings

    parser = argparse.ArgumentParser(prog="cj-operator-migrate", description=__doc__)
    parser.add_argument("action", nargs="?", choices=["upgrade", "downgrade"], default="upgrade")
    parser.add_argument(
        "revision", nargs="?", default=None, help="target revision (head / base by default)"
    )
    args = parser.parse_args(argv)
    revision = args.revision or ("head" if args.action == "upgrade" else "base")
    settings = OperatorSettings()
    try:
        asyncio.run(migrate(settings.database_url, args.action, revision))
    except Exception as exc:  # report any failure as one line, exit non-zero
        print(f"cj-operator-migrate: {args.action} to {revision} failed: {exc}", file=sys.stderr)
        return 1
    print(f"cj-operator-migrate: {args.action} to {revision} done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
