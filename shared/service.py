"""The app factory every service uses: lifespan (database, relay, consumers), middleware, probes, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Request
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import TokenVerifier
from shared.consumer import Batched, ConsumerRunner, Handler
from shared.db import create_engine, create_sessionmaker
from shared.dead_letters import depth_loop
from shared.dead_letters_api import dead_letters_router
from shared.errors import PROBLEM_MEDIA_TYPE, install_problem_handlers, problem_response
from shared.events.asyncapi import asyncapi_document
from shared.json_schema import add_component, model_schema
from shared.observability import (
    HTTP_LATENCY,
    HTTP_REQUESTS,
    READINESS,
    REQUEST_ID_HEADER,
    adopt_request_id,
    configure_logging,
    metrics_exposition,
    request_id_var,
)
from shared.outbox import OutboxRelay, close_notifiers
from shared.projection import Projection, handlers_of, topics_of
from shared.responses import json_response
from shared.retention import retention_loop
from shared.settings import ServiceSettings
from shared.tables import PLATFORM_TABLES
from shared.text import refuse_nul

log = logging.getLogger(__name__)


@dataclass
class Subscription:
    """A consumer group of the service: its topics and a handler per event type; `may_lag`: a projection that
    fetches in rounds (`projection_fetch_*` settings) rather than at once."""

    group_id: str
    topics: list[str]
    handlers: dict[str, Handler | Batched]
    may_lag: bool = False

    @classmethod
    def of(cls, group_id: str, *projections: Projection, may_lag: bool = False) -> Subscription:
        """The group of these projections (shared/projection.py): their topics and handlers."""
        return cls(group_id=group_id, topics=topics_of(*projections), handlers=handlers_of(*projections),
                   may_lag=may_lag)


@dataclass
class ServiceSpec:
    name: str
    title: str
    description: str
    routers: Sequence[APIRouter]
    publishes: bool = True
    subscriptions: Sequence[Subscription] = ()
    #: Larger body limits for chosen path prefixes (bulk imports).
    body_limits: dict[str, int] = field(default_factory=dict)
    #: Models a route documents only through `openapi_extra` (a body it validates itself, as the profile PUT does
    #: by field): FastAPI never sees them, so they are put into the OpenAPI components here.
    extra_schemas: Sequence[type[BaseModel]] = ()
    #: Background jobs started with the service, given the sessionmaker.
    background: Sequence[Callable[[ServiceSettings, async_sessionmaker[AsyncSession]], Coroutine[Any, Any, None]]] = ()
    #: The platform tables the service's database has (shared/tables.py; the same its migrations make): the
    #: retention clean-up touches these only.
    platform_tables: tuple[str, ...] = PLATFORM_TABLES

    def __post_init__(self) -> None:
        needed = {*(("outbox", "outbox_offsets") if self.publishes else ()),
                  *(("inbox", "dead_letters", "audit_log") if self.subscriptions else ())}
        if missing := needed - set(self.platform_tables):
            raise ValueError(f"{self.name}: the spec needs the platform tables {sorted(missing)}")

    @property
    def group_handlers(self) -> dict[str, dict[str, Handler | Batched]]:
        return {sub.group_id: sub.handlers for sub in self.subscriptions}

    @property
    def consumed_topics(self) -> tuple[str, ...]:
        return tuple(topic for sub in self.subscriptions for topic in sub.topics)


class BodyLimit:
    """413 for bodies over the limit, counted as they stream (a missing or false Content-Length can't evade it)."""

    def __init__(self, app: ASGIApp, default: int, overrides: dict[str, int]) -> None:
        self.app = app
        self.default = default
        self.overrides = sorted(overrides.items(), key=lambda kv: -len(kv[0]))

    def _limit(self, path: str) -> int:
        return next((limit for prefix, limit in self.overrides if path.startswith(prefix)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        too_large = problem_response(413, "Payload too large", f"The request body exceeds {limit} bytes.",
                                     slug="payload-too-large")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await too_large(scope, receive, send)
            return
        received = 0
        refused = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Answer 413 now and tell the app the client left: it stops reading and its reply is dropped.
                    refused = True
                    await too_large(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        with contextlib.suppress(ClientDisconnect):
            await self.app(scope, counting_receive, guarded_send)


class Observe:
    """Request id (accepted or generated, echoed, on every log line), and per-route metrics and a log line.

    Pure ASGI rather than an `@app.middleware("http")`: the app runs in the caller's task and context, and an error
    after the response started reaches the server as an incomplete response instead of a completed one.
    """

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = adopt_request_id(Headers(scope=scope).get(REQUEST_ID_HEADER))
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            elapsed = time.perf_counter() - started
            HTTP_REQUESTS.labels(self.service, scope["method"], path, str(status)).inc()
            HTTP_LATENCY.labels(self.service, scope["method"], path).observe(elapsed)
            if path not in ("/healthz", "/readyz", "/metrics"):
                log.info("request", extra={"method": scope["method"], "path": scope["path"], "status": status,
                                           "duration_ms": round(elapsed * 1000, 2)})
            request_id_var.reset(token)


def create_service_app(spec: ServiceSpec, settings: ServiceSettings) -> FastAPI:
    configure_logging(spec.name, settings.log_level)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        engine = create_engine(settings)
        sessionmaker = create_sessionmaker(engine)
        tasks: list[asyncio.Task[None]] = []
        stoppers: list[Callable[[], None]] = []
        relay = OutboxRelay(settings, spec.name) if spec.publishes else None
        if relay is not None:
            tasks.append(asyncio.create_task(relay.run(), name=f"{spec.name}-outbox-relay"))
            stoppers.append(relay.stop)
        for sub in spec.subscriptions:
            runner = ConsumerRunner(settings, service=spec.name, group_id=sub.group_id, topics=sub.topics,
                                    handlers=sub.handlers, sessionmaker=sessionmaker, may_lag=sub.may_lag)
            tasks.append(asyncio.create_task(runner.run(), name=f"{spec.name}-consumer-{sub.group_id}"))
            stoppers.append(runner.stop)
        # Background jobs hold no state worth draining (what they do is in the database): cancelled on shutdown.
        jobs = [asyncio.create_task(job(settings, sessionmaker)) for job in spec.background]
        jobs.append(asyncio.create_task(retention_loop(settings, spec.name, spec.platform_tables),
                                        name=f"{spec.name}-retention"))
        if spec.subscriptions:
            groups = [sub.group_id for sub in spec.subscriptions]
            jobs.append(asyncio.create_task(depth_loop(spec.name, groups, sessionmaker)))
        # What is alive once started (modules, tables, models, schemas) lives as long as the process: kept out of
        # the collector's full passes, which otherwise rescan all of it and cost a consumer about a fifth of its
        # CPU (a profile of reporting consuming member-added events, issue 13). Unfrozen again when it stops.
        gc.collect()
        gc.freeze()
        log.info("service started", extra={"port": settings.port})
        try:
            yield {"settings": settings, "engine": engine, "sessionmaker": sessionmaker,
                   "token_verifier": TokenVerifier(settings), "relay": relay}
        finally:
            gc.unfreeze()
            # Drain: let the relay finish its batch and consumers commit, then stop what is left.
            for job_task in jobs:
                job_task.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
            for stop in stoppers:
                stop()
            _, pending = await asyncio.wait(tasks, timeout=10) if tasks else (set(), set())
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await close_notifiers()
            await engine.dispose()

    app = FastAPI(title=spec.title, description=spec.description, version="1.0.0", lifespan=lifespan,
                  dependencies=[Depends(refuse_nul)])
    install_problem_handlers(app)
    _document_problems(app, spec.extra_schemas)
    for router in spec.routers:
        app.include_router(router)
    if spec.subscriptions:
        # Every consuming service has the admin API of its dead letters.
        app.include_router(dead_letters_router(spec.name, spec.group_handlers))

    app.add_middleware(Observe, service=spec.name)
    app.add_middleware(BodyLimit, default=settings.max_body_bytes, overrides=spec.body_limits)

    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="The database and the broker are reachable",
             responses={503: {"description": "Not ready"}})
    async def readyz(request: Request) -> Response:
        checks = {"database": await _database_ok(request.state.engine),
                  "broker": await _broker_ok(settings.kafka_bootstrap_servers)}
        for check, ok in checks.items():
            READINESS.labels(spec.name, check).set(1 if ok else 0)
        ready = all(checks.values())
        body = {"status": "ready" if ready else "not-ready",
                "checks": {k: "ok" if v else "unreachable" for k, v in checks.items()}}
        return json_response(body, 200 if ready else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(metrics_exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/asyncapi.json", tags=["operations"], summary="AsyncAPI document of this service's events")
    async def asyncapi() -> dict[str, Any]:
        return asyncapi_document(spec.name, consumes=spec.consumed_topics)

    return app


#: The RFC 9457 body of every error (shared/errors.py), as documented in the OpenAPI components.
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "description": "The offending fields (validation errors)",
                   "items": {"type": "object", "properties": {
                       "field": {"type": "string"}, "message": {"type": "string"},
                       "type": {"type": ["string", "null"]}}}},
    },
    "additionalProperties": True,
}
_PROBLEM_DESCRIPTIONS = {
    400: "Bad request (for example a cursor that is not ours)",
    401: "Missing or invalid bearer token",
    403: "The caller's role may not do this",
    404: "Not found, or not visible to the caller",
    409: "Conflict (duplicate, illegal transition, or Idempotency-Key reused with another body)",
    412: "If-Match names an older version",
    413: "The request body is too large",
    415: "Unsupported media type",
    422: "Validation failed: the offending fields are listed in `errors`",
    503: "The database is unavailable at the moment: retry after `Retry-After` seconds",
}


def _document_problems(app: FastAPI, extra_schemas: Sequence[type[BaseModel]] = ()) -> None:
    """Document the problem+json errors every API operation can answer (DESIGN.md §3), derived from the operation:
    400/401/403/413/422/503 always, 404 with a path parameter, 409 with an Idempotency-Key, 412 with If-Match, 415
    with a non-JSON body, plus what the route declares itself. FastAPI's default 422 (`HTTPValidationError`,
    application/json) is not what the handlers send, so it is replaced. The spec's extra schemas join the
    components."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = PROBLEM_SCHEMA
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        for model in extra_schemas:
            add_component(schemas, model.__name__, model_schema(model, schemas, "#/components/schemas/"))
        for path, item in document.get("paths", {}).items():
            if not path.startswith("/api/"):
                continue
            for operation in item.values():
                params = operation.get("parameters", [])
                names = {p["name"].lower() for p in params}
                media = set(operation.get("requestBody", {}).get("content", {}))
                statuses = {400, 401, 403, 413, 422, 503}
                if any(p["in"] == "path" for p in params):
                    statuses.add(404)
                if "idempotency-key" in names:
                    statuses.add(409)
                if "if-match" in names:
                    statuses.add(412)
                if media - {"application/json"}:
                    statuses.add(415)
                responses = operation.setdefault("responses", {})
                statuses |= {int(code) for code in responses if code.isdigit() and 400 <= int(code) < 500}
                for status in sorted(statuses):
                    described = responses.get(str(status), {}).get("description")
                    if described in (None, "Validation Error"):  # FastAPI's default 422 text
                        described = _PROBLEM_DESCRIPTIONS.get(status, "Error")
                    responses[str(status)] = {
                        "description": described,
                        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
                    if status == 503:
                        responses["503"]["headers"] = {"Retry-After": {
                            "description": "Seconds to wait before retrying", "schema": {"type": "integer"}}}
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


async def _database_ok(engine: Any) -> bool:
    try:
        async with asyncio.timeout(2):
            async with engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        return True
    except Exception:
        return False


async def _broker_ok(bootstrap_servers: str) -> bool:
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            async with asyncio.timeout(2):
                _, writer = await asyncio.open_connection(host.strip("[]"), int(port))
            writer.close()
            return True
        except (OSError, TimeoutError, ValueError):
            continue
    return False
