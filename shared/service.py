"""The app factory every service uses: lifespan (database, relay, consumers), middleware, probes, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import TokenVerifier
from shared.consumer import ConsumerRunner, Handler
from shared.db import create_engine, create_sessionmaker
from shared.errors import install_problem_handlers, problem_response
from shared.events.asyncapi import asyncapi_document
from shared.observability import HTTP_LATENCY, HTTP_REQUESTS, configure_logging, request_id_var
from shared.outbox import OutboxRelay
from shared.responses import json_response
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)


@dataclass
class Subscription:
    """A consumer group of the service: its topics and a handler per event type."""

    group_id: str
    topics: list[str]
    handlers: dict[str, Handler]


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
    #: Background jobs started with the service, given the sessionmaker.
    background: Sequence[Callable[[ServiceSettings, async_sessionmaker[AsyncSession]], Coroutine[Any, Any, None]]] = ()

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
                                    handlers=sub.handlers, sessionmaker=sessionmaker)
            tasks.append(asyncio.create_task(runner.run(), name=f"{spec.name}-consumer-{sub.group_id}"))
            stoppers.append(runner.stop)
        # Background jobs hold no state worth draining (what they do is in the database): cancelled on shutdown.
        jobs = [asyncio.create_task(job(settings, sessionmaker)) for job in spec.background]
        log.info("service started", extra={"port": settings.port})
        try:
            yield {"settings": settings, "engine": engine, "sessionmaker": sessionmaker,
                   "token_verifier": TokenVerifier(settings), "relay": relay}
        finally:
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
            await engine.dispose()

    app = FastAPI(title=spec.title, description=spec.description, version="1.0.0", lifespan=lifespan)
    install_problem_handlers(app)
    for router in spec.routers:
        app.include_router(router)

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        token = request_id_var.set(request_id[:64])
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            response.headers["X-Request-ID"] = request_id[:64]
            return response
        finally:
            route = request.scope.get("route")
            path = getattr(route, "path", "unmatched")
            elapsed = time.perf_counter() - started
            HTTP_REQUESTS.labels(spec.name, request.method, path, str(status)).inc()
            HTTP_LATENCY.labels(spec.name, request.method, path).observe(elapsed)
            if path not in ("/healthz", "/readyz", "/metrics"):
                log.info("request", extra={"method": request.method, "path": request.url.path, "status": status,
                                           "duration_ms": round(elapsed * 1000, 2)})
            request_id_var.reset(token)

    app.add_middleware(BodyLimit, default=settings.max_body_bytes, overrides=spec.body_limits)

    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="The database and the broker are reachable",
             responses={503: {"description": "Not ready"}})
    async def readyz(request: Request) -> Response:
        checks = {"database": await _database_ok(request.state.engine),
                  "broker": await _broker_ok(settings.kafka_bootstrap_servers)}
        ready = all(checks.values())
        body = {"status": "ready" if ready else "not-ready",
                "checks": {k: "ok" if v else "unreachable" for k, v in checks.items()}}
        return json_response(body, 200 if ready else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/asyncapi.json", tags=["operations"], summary="AsyncAPI document of this service's events")
    async def asyncapi() -> dict[str, Any]:
        return asyncapi_document(spec.name, consumes=spec.consumed_topics)

    return app


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
