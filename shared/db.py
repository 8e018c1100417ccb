"""Async database access: engine, one session per request (one transaction), table naming convention."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import sqlalchemy as sa
from fastapi import Depends, Request
from sqlalchemy import MetaData, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util import await_

from shared.settings import ServiceSettings

#: Constraint and index names fixed before the first migration, so Alembic can name what it alters.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    """A service's own MetaData, so that two services' tables never share one registry in a process."""
    return MetaData(naming_convention=NAMING_CONVENTION)


def utc_now() -> datetime:
    return datetime.now(UTC)


def timestamptz(*, nullable: bool = False, server_default: Any = None) -> Any:
    """A `timestamp with time zone` column for SQLModel's `sa_column=` (SQLModel maps datetime without zone)."""
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable, server_default=server_default)


def sqlalchemy_url(database_url: str) -> str:
    """DATABASE_URL is a plain asyncpg/libpq URL; SQLAlchemy wants the driver named."""
    parts = urlsplit(database_url)
    scheme = "postgresql+asyncpg" if parts.scheme in {"postgresql", "postgres"} else parts.scheme
    return urlunsplit((scheme, *parts[1:]))


def asyncpg_url(database_url: str) -> str:
    """The URL as asyncpg.connect takes it (no driver suffix)."""
    parts = urlsplit(database_url)
    return urlunsplit(("postgresql", *parts[1:]))


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under the session's, in its transaction: for COPY, and for reads of thousands of rows,
    which cost several times more as SQLAlchemy result rows."""
    raw = await (await session.connection()).get_raw_connection()
    conn: asyncpg.Connection = raw.driver_connection
    return conn


def create_engine(settings: ServiceSettings, *, unbounded_statements: bool = False) -> AsyncEngine:
    """The service's engine; `unbounded_statements`: no DATABASE_COMMAND_TIMEOUT_SECONDS limit, for an offline
    command whose statements grow with the data."""
    engine = create_async_engine(
        sqlalchemy_url(settings.database_url),
        # Every connection the pool opens stays in it: an overflow connection, closed at its return, made 16
        # concurrent clients pay a new backend, asyncpg's type introspection and the statements' preparation on a
        # good share of their requests (about a tenth of the household's CPU per registration).
        pool_size=settings.database_pool_size,
        max_overflow=0,
        pool_timeout=settings.database_pool_timeout_seconds,
        # The connection returned last is handed out first: under light load a request gets one that was just in
        # use (no idle ping, warm statement cache), and the pool's surplus stays idle.
        pool_use_lifo=True,
        connect_args={
            "timeout": settings.database_connect_timeout_seconds,
            "command_timeout": None if unbounded_statements else settings.database_command_timeout_seconds,
            "statement_cache_size": settings.database_statement_cache_size,
            # asyncpg prepares every statement. After five runs PostgreSQL may switch to a generic plan that
            # cannot use partial indexes (`status = $1` does not prove `WHERE status = 'active'`) and that was
            # costed when the tables were small: the NIK and KK checks became sequential scans that grew with
            # the data; and one reporting statement serves the nation and a single village (`LIKE :prefix`),
            # which a generic plan cannot tell apart (it nested loops for minutes). Planning each execution with
            # its values costs a few milliseconds at most.
            "server_settings": {"plan_cache_mode": "force_custom_plan"},
        },
    )
    # Instead of pool_pre_ping, whose ping waits out the whole command timeout on a dead connection.
    event.listen(engine.sync_engine, "checkout", _ping_on_checkout(settings.database_connect_timeout_seconds,
                                                                   settings.database_ping_after_idle_seconds))
    event.listen(engine.sync_engine, "checkin", _note_checkin)
    event.listen(engine.sync_engine, "handle_error", _discard_timed_out_connection)
    return engine


_CHECKED_IN_AT = "checked_in_at"


def _note_checkin(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info[_CHECKED_IN_AT] = time.monotonic()


def _ping_on_checkout(timeout: float, after_idle: float) -> Callable[[Any, ConnectionPoolEntry, Any], None]:
    """A pooled connection idle for `after_idle` seconds or more must answer within `timeout` (as long as connecting
    may take), or it is replaced: one that fell into a dead network path would otherwise hold its request until the
    command timeout. A connection checked in less than `after_idle` ago (under load, nearly every one) skips it."""

    def ping(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        checked_in = record.info.get(_CHECKED_IN_AT)
        if checked_in is not None and time.monotonic() - checked_in < after_idle:
            return
        conn: Any = record.driver_connection
        try:
            await_(conn.execute("SELECT 1", timeout=timeout))  # simple protocol: one round trip, no transaction
        except Exception as exc:
            conn.terminate()  # dead: do not wait for it to close politely
            raise DisconnectionError(f"pooled connection failed its ping: {exc!r}") from exc

    return ping


def _discard_timed_out_connection(context: ExceptionContext) -> None:
    """A command timeout reaches the caller as asyncpg's bare TimeoutError (an OSError: a 503, see shared/errors.py).
    The connection is still busy cancelling the statement (for good if the path is dead): discard it instead of
    returning it to the pool, and only it, since one slow statement says nothing about the others."""
    if isinstance(context.original_exception, TimeoutError):
        context.is_disconnect = True
        context.invalidate_pool_on_disconnect = False


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One request, one transaction: commit on success, roll back on any error. Services never commit."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.state.sessionmaker
    async with sessionmaker() as session, session.begin():
        yield session


# scope="function": commit before the response is sent, so a failed commit is never reported as success.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
