"""Service-level tests in a transaction rolled back after each test (the shape of Polar's tests/fixtures/database.py).

A test that calls a service function or a repository with a session takes the service's `<svc>_session` fixture
(the root conftest; reporting's in services/reporting/tests/conftest.py): an AsyncSession on one connection of the
service's real session-scoped database, inside an outer transaction that is rolled back when the test ends. The
session joins that transaction with a SAVEPOINT (`join_transaction_mode="create_savepoint"`), so the `commit()` or
`rollback()` of the session, or of a `session.begin()` block in the code under test, only releases or rolls back
its savepoint: nothing the test writes outlives it, and no test needs a region of its own or a clean-up.

What the test writes is visible to that connection only. A test whose writes must be seen by another connection
(the HTTP app, a consumer, the outbox relay, a concurrent transaction) keeps real commits: see CONTRIBUTING.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from shared.db import create_engine
from shared.settings import ServiceSettings


@contextlib.asynccontextmanager
async def rolled_back(settings: ServiceSettings) -> AsyncIterator[AsyncSession]:
    """A session of the service's database (its own engine settings) whose every write is rolled back at the end."""
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            outer = await connection.begin()
            session = sessions_in(connection)()
            try:
                yield session
            finally:
                await session.close()
                await outer.rollback()
    finally:
        await engine.dispose()


def sessions_in(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    """Sessions that join the connection's transaction, each with a savepoint of its own."""
    return async_sessionmaker(bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint")


def sessions_of(session: AsyncSession) -> async_sessionmaker[AsyncSession]:
    """For a use case that opens sessions itself (a consumer batch, a rebuild, a sweep job): every session it opens
    joins the test's transaction, so its commits are rolled back with the test's."""
    connection = session.bind
    assert isinstance(connection, AsyncConnection), "a session of the rolled_back fixture"
    return sessions_in(connection)
