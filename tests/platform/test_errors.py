"""How shared/errors.py renders errors: an unreachable database is a 503 the client may retry, a unique violation
a 409, any other database error stays a 500, all answered without re-raising, so the server keeps the connection
open (see test_unexpected_errors.py for that against a real server); and validation errors, whoever raises them, are
one 422 shape."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from shared.errors import PROBLEM_MEDIA_TYPE, ValidationFailed, database_unavailable, install_problem_handlers


class DriverError(Exception):
    """Stands for asyncpg's error as SQLAlchemy wraps it: it carries the SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def db_error(sqlstate: str = "XX000", *, invalidated: bool = False) -> DBAPIError:
    return DBAPIError("SELECT 1", {}, DriverError(sqlstate), connection_invalidated=invalidated)


FAILURES: dict[str, Exception] = {
    "refused": ConnectionRefusedError(111, "Connection refused"),
    "reset": ConnectionResetError(104, "Connection reset by peer"),
    "connect-timeout": TimeoutError(),
    "shutting-down": db_error("57P03"),
    "terminated": db_error("57P01"),
    "crash": db_error("57P02"),
    "connection-exception": db_error("08006"),
    "too-many-connections": db_error("53300"),
    "invalidated": db_error(invalidated=True),
    "pool-exhausted": PoolTimeout("QueuePool limit of size 10 overflow 10 reached, connection timed out"),
    "unique-violation": db_error("23505"),
    "driver-unique-violation": asyncpg.exceptions.UniqueViolationError("duplicate key value"),
    "other-database-error": db_error("42P01"),
    "nul-in-text": db_error("22021"),
    # The driver's errors where it is used directly (the region import's COPY), unwrapped by SQLAlchemy.
    "driver-shutting-down": asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator"),
    "driver-nul-in-text": asyncpg.exceptions.CharacterNotInRepertoireError("invalid byte sequence 0x00"),
}


class Dose(BaseModel):
    vaccine: str = Field(max_length=10)
    dose_number: int = Field(ge=1)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/fail/{kind}")
    async def fail(kind: str) -> None:
        raise FAILURES[kind]

    @app.post("/request")
    async def request_validation(body: Dose) -> None:
        return None

    @app.post("/service")
    async def service_validation(body: dict[str, object]) -> None:
        Dose.model_validate(body)  # a service validating what it was given, pydantic's error left to the mapper

    @app.post("/nested")
    async def nested_validation(body: dict[str, object]) -> None:
        try:
            Dose.model_validate(body)
        except ValidationError as exc:
            raise ValidationFailed.of(exc, "The child's measurement is invalid.", prefix="child.measurement") from exc

    # The app's exceptions are raised to the caller: an error answered by the app must not surface as one.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://errors") as client:
        yield client


@pytest.mark.parametrize("kind", ["refused", "reset", "connect-timeout", "shutting-down", "terminated", "crash",
                                  "connection-exception", "too-many-connections", "invalidated",
                                  "pool-exhausted", "driver-shutting-down"])
async def test_an_unreachable_database_is_a_503_problem_to_retry(client: httpx.AsyncClient, kind: str) -> None:
    assert database_unavailable(FAILURES[kind])
    response = await client.get(f"/fail/{kind}")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert int(response.headers["retry-after"]) > 0
    body = response.json()
    assert body["status"] == 503 and body["type"].endswith("/service-unavailable")
    assert body["instance"] == f"/fail/{kind}"


async def test_other_database_errors_are_unchanged(client: httpx.AsyncClient) -> None:
    unexpected = await client.get("/fail/other-database-error")
    assert unexpected.status_code == 500 and unexpected.headers["content-type"] == PROBLEM_MEDIA_TYPE
    for kind in ("nul-in-text", "driver-nul-in-text"):
        nul = await client.get(f"/fail/{kind}")
        assert nul.status_code == 422 and nul.json()["errors"][0]["type"] == "string_nul"


@pytest.mark.parametrize("kind", ["unique-violation", "driver-unique-violation"])
async def test_a_unique_violation_is_a_409_conflict(client: httpx.AsyncClient, kind: str) -> None:
    assert not database_unavailable(FAILURES[kind])
    response = await client.get(f"/fail/{kind}")
    assert response.status_code == 409 and response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = response.json()
    assert body["type"].endswith("/conflict") and "unique" in body["detail"]
    assert "duplicate key" not in response.text  # the driver's message (it may quote the values) stays inside


async def test_validation_errors_have_one_shape_whoever_raises_them(client: httpx.AsyncClient) -> None:
    bad = {"vaccine": "X" * 11, "dose_number": 0}
    answers = [await client.post(path, json=bad) for path in ("/request", "/service", "/nested")]
    for response in answers:
        assert response.status_code == 422 and response.headers["content-type"] == PROBLEM_MEDIA_TYPE
        assert response.json()["type"].endswith("/validation-failed")
        assert all(set(e) == {"field", "message", "type"} for e in response.json()["errors"])
        assert "XXXXXXXXXXX" not in response.text  # never the input back
    request, service, nested = (r.json() for r in answers)
    assert [e["field"] for e in request["errors"]] == ["body.vaccine", "body.dose_number"]
    assert [e["field"] for e in service["errors"]] == ["vaccine", "dose_number"]
    assert [e["field"] for e in nested["errors"]] == ["child.measurement.vaccine", "child.measurement.dose_number"]
    assert [e["type"] for e in service["errors"]] == [e["type"] for e in request["errors"]] == [
        "string_too_long", "greater_than_equal"]
    assert nested["detail"] == "The child's measurement is invalid."
