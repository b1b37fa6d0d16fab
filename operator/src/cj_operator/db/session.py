"""The operator's database handle: one async engine and its session factory."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


class Database:
    """Async SQLAlchemy engine (asyncpg) and sessions that keep objects after commit.

    `url` is a postgresql+asyncpg URL; `pool_size` connections are kept open.
    """

    def __init__(self, url: str, pool_size: int = 5) -> None:
        self.engine: AsyncEngine = create_async_engine(
            url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
        )
        self.sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.engine, expire_on_commit=False
        )

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
