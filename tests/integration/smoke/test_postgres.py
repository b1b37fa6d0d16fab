"""The PostgreSQL server is real: a query through SQLAlchemy async on asyncpg."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine


async def test_query_through_sqlalchemy_asyncpg(database_url: str) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            version = (await conn.execute(text("SHOW server_version"))).scalar_one()
            await conn.execute(text("CREATE TABLE essays (id text PRIMARY KEY, words int)"))
            await conn.execute(
                text("INSERT INTO essays VALUES (:id, :w)"),
                [{"id": "e1", "w": 250}, {"id": "e2", "w": 410}],
            )
        async with engine.connect() as conn:
            total = (await conn.execute(text("SELECT sum(words) FROM essays"))).scalar_one()
            driver = conn.dialect.driver
    finally:
        await engine.dispose()
    assert version.startswith("15.")
    assert total == 660
    assert driver == "asyncpg"
