"""RFC 9457 problem+json errors: the domain's exceptions and the one mapper that renders them."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.observability import request_id_var

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://posyandu.example.id/problems/"
#: PostgreSQL's character_not_in_repertoire and untranslatable_character: text it cannot store (NUL).
TEXT_NOT_STORABLE = frozenset({"22021", "22P05"})
NUL_MESSAGE = "NUL characters (U+0000) are not allowed"
#: PostgreSQL's admin_shutdown, crash_shutdown, cannot_connect_now (starting or stopping) and too_many_connections,
#: besides the whole connection_exception class (08): the database is unavailable, the request is not at fault.
DATABASE_UNAVAILABLE = frozenset({"57P01", "57P02", "57P03", "53300"})
#: PostgreSQL's unique_violation: a value that must be unique is taken, typically by a concurrent request that
#: passed the same checks a moment earlier.
UNIQUE_VIOLATION = "23505"
#: What a 503 asks the client to wait before it retries.
RETRY_AFTER_SECONDS = 2


class Problem(Exception):
    """A domain error with its HTTP status. Subclasses name what went wrong."""

    status = 400
    title = "Bad request"
    slug = "bad-request"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra


class BadRequest(Problem):
    pass


class ValidationFailed(Problem):
    status, title, slug = 422, "Validation failed", "validation-failed"

    @classmethod
    def of(cls, exc: ValidationError | RequestValidationError, detail: str = "The request has invalid fields.", *,
           prefix: str = "") -> ValidationFailed:
        """The 422 of pydantic's errors (a request's, or of a model a service validates), each field named once
        as `field_errors` names it; `prefix` places a nested model's fields in the request (`child.measurement`)."""
        return cls(detail, errors=field_errors(exc.errors(), prefix=prefix))


class Unauthorized(Problem):
    status, title, slug = 401, "Unauthorized", "unauthorized"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class Forbidden(Problem):
    status, title, slug = 403, "Forbidden", "forbidden"


class NotFound(Problem):
    status, title, slug = 404, "Not found", "not-found"


class Conflict(Problem):
    status, title, slug = 409, "Conflict", "conflict"


class PreconditionFailed(Problem):
    status, title, slug = 412, "Precondition failed", "precondition-failed"


class PreconditionRequired(Problem):
    status, title, slug = 428, "Precondition required", "precondition-required"


class PayloadTooLarge(Problem):
    status, title, slug = 413, "Payload too large", "payload-too-large"


class UnsupportedMediaType(Problem):
    status, title, slug = 415, "Unsupported media type", "unsupported-media-type"


def problem_response(status: int, title: str, detail: str, *, slug: str | None = None,
                     errors: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None,
                     instance: str | None = None, **extra: Any) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (slug or title.lower().replace(" ", "-")),
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = errors
    body.update(extra)
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def nul_error(field: str) -> dict[str, str]:
    """The entry of a 422's `errors` for a NUL character at `field` (shared/text.py)."""
    return {"field": field, "message": NUL_MESSAGE, "type": "string_nul"}


def field_errors(errors: Iterable[Mapping[str, Any]], *, prefix: str = "") -> list[dict[str, Any]]:
    """The `errors` entries of a 422 from pydantic's error list: the field's dotted path, the message and the
    error's type, never the input (it may be personal data)."""
    entries = []
    for err in errors:
        path = [str(part) for part in err.get("loc", ())]
        entries.append({"field": ".".join([prefix, *path] if prefix else path), "message": err.get("msg", "invalid"),
                        "type": err.get("type")})
    return entries


def sqlstate(exc: DBAPIError | asyncpg.PostgresError) -> str | None:
    """PostgreSQL's SQLSTATE of a database error, through SQLAlchemy's wrapper or from the driver used directly."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    state = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "driver_exception", None), "sqlstate", None)
    return state if isinstance(state, str) else None


def database_unavailable(exc: BaseException) -> bool:
    """Whether an error means the database cannot be reached right now (down, restarting, connection lost, every
    pooled connection busy), rather than anything about the request. A raw OSError (refused, reset, timed out) is how
    connecting to it fails; a statement that outlives the command timeout raises asyncpg's bare TimeoutError, an
    OSError too (shared/db.py discards its connection). The driver's own errors count as SQLAlchemy's do."""
    if isinstance(exc, DBAPIError | asyncpg.PostgresError):
        state = sqlstate(exc)
        invalidated = isinstance(exc, DBAPIError) and exc.connection_invalidated
        return invalidated or (state is not None and (state.startswith("08") or state in DATABASE_UNAVAILABLE))
    return isinstance(exc, OSError | PoolTimeout)


class UnexpectedErrors:
    """The last resort for an error no handler maps: a generic 500 problem+json, logged once with its traceback.

    Starlette's own last resort (ServerErrorMiddleware) re-raises after its 500, and the server then drops the
    client's keep-alive connection; this one answers and returns, so the connection serves the next request. An
    error after the response started cannot be answered: the response is left incomplete, so the server closes the
    connection and the client sees it cut short rather than complete-looking.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except ClientDisconnect:
            return  # nobody is left to answer (or the body limit already did)
        except Exception:
            log.exception("unhandled error", extra={"path": scope["path"], "response_started": started})
            if started:
                return
            request_id = request_id_var.get()  # set by shared.service.Observe; quoted when reporting the error
            extra: dict[str, Any] = {"request_id": request_id} if request_id else {}
            response = problem_response(500, "Internal server error", "The server could not complete the request.",
                                        instance=scope["path"], **extra)
            await response(scope, receive, send)


def install_problem_handlers(app: FastAPI) -> None:
    """Map every error to problem+json: domain problems, validation, HTTP errors, and the unexpected (a middleware,
    so that the app is the one to answer them, see UnexpectedErrors)."""

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return problem_response(exc.status, exc.title, exc.detail, slug=exc.slug, errors=exc.errors,
                                headers=exc.headers, instance=request.url.path, **exc.extra)

    async def on_validation(request: Request, exc: Exception) -> Response:
        # The request's own (FastAPI's), or a model a service validated from the request's data: one 422 shape,
        # the same as a service's ValidationFailed.
        assert isinstance(exc, RequestValidationError | ValidationError)
        return await on_problem(request, ValidationFailed.of(exc))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        title = {404: "Not found", 405: "Method not allowed", 401: "Unauthorized"}.get(exc.status_code, "Error")
        detail = exc.detail if isinstance(exc.detail, str) else title
        return problem_response(exc.status_code, title, detail, headers=getattr(exc, "headers", None),
                                instance=request.url.path)

    async def on_unavailable(request: Request, exc: Exception) -> Response:
        log.warning("database unavailable", extra={"path": request.url.path, "error": repr(exc)[:500]})
        return problem_response(503, "Service unavailable", "The database is unavailable at the moment; retry later.",
                                slug="service-unavailable", headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
                                instance=request.url.path)

    async def on_database_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DBAPIError | asyncpg.PostgresError)  # the latter from the driver used directly (COPY)
        if database_unavailable(exc):
            return await on_unavailable(request, exc)
        if sqlstate(exc) == UNIQUE_VIOLATION:
            # A value that must be unique was taken after this request's checks (two concurrent creates of the same
            # thing): the database's unique index decided, and the caller gets the 409 the check would have given.
            return await on_problem(request, Conflict(
                "A value that must be unique is taken: another request created the same at the same moment. Read "
                "the current state before you retry."))
        if sqlstate(exc) in TEXT_NOT_STORABLE:
            # Text PostgreSQL cannot hold (a NUL character) that got past shared/text.py: bad input all the same.
            return await on_problem(request, ValidationFailed("The request holds text with a NUL character.",
                                                              errors=[nul_error("body")]))
        raise exc  # unexpected: UnexpectedErrors answers it

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(ValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(DBAPIError, on_database_error)
    app.add_exception_handler(asyncpg.PostgresError, on_database_error)
    app.add_exception_handler(OSError, on_unavailable)
    app.add_exception_handler(PoolTimeout, on_unavailable)
    app.add_middleware(UnexpectedErrors)
