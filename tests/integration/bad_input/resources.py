"""Resources a bad-input module holds for all its tests: a database of its own."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg

from tests.support.devcluster import ClusterEnv
from tests.support.isolation import unique_name


@contextlib.asynccontextmanager
async def temporary_database(cluster: ClusterEnv) -> AsyncIterator[str]:
    """A fresh database on the cluster's PostgreSQL; yields its SQLAlchemy URL and drops it
    afterwards (the conftest's `database_url` does the same for one test)."""
    name = unique_name("t_")
    server = cluster.database_url.rsplit("/", 1)[0]
    admin_url = server.replace("+asyncpg", "") + "/postgres"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield f"{server}/{name}"
    finally:
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
