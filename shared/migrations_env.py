"""The body of every service's Alembic env.py: async, with the service's tables and the platform tables."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db import sqlalchemy_url
from shared.tables import PLATFORM_TABLES, platform_metadata_of


def run(service_metadata: MetaData, platform_tables: tuple[str, ...] = PLATFORM_TABLES) -> None:
    """`platform_tables`: the platform tables the service has (shared/tables.py)."""
    config = context.config
    url = config.attributes.get("database_url") or os.environ["DATABASE_URL"]
    target = [service_metadata, platform_metadata_of(platform_tables)]

    def migrate(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=target, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()

    async def online() -> None:
        engine = create_async_engine(sqlalchemy_url(url))
        async with engine.connect() as connection:
            await connection.run_sync(migrate)
        await engine.dispose()

    if context.is_offline_mode():
        context.configure(url=sqlalchemy_url(url), target_metadata=target, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(online())
