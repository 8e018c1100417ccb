"""An unexpected error, served by a real uvicorn: a generic 500 problem+json with the request id, logged once with its
traceback, and the client keeps its keep-alive connection; one after the response started aborts that response (the
client sees it cut short, not complete) instead of hanging it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from conftest import Stack, service_settings
from deploy.local.embedded import free_port
from shared.service import ServiceSpec, create_service_app
from shared.settings import ServiceSettings
from tests.support.waiting import eventually

router = APIRouter()


@router.get("/crash")
async def crash() -> None:
    raise ValueError("year 0 is out of range")  # what reporting raised for ?period=0000


@router.get("/fine")
async def fine() -> dict[str, bool]:
    return {"fine": True}


@router.get("/crash-mid-stream")
async def crash_mid_stream() -> StreamingResponse:
    async def rows() -> AsyncIterator[bytes]:
        yield b"kode,nama\n"
        raise ValueError("the export failed half way")

    return StreamingResponse(rows(), media_type="text/csv")


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Served:
    url: str
    logs: Records


@pytest.fixture
async def served(stack: Stack) -> AsyncIterator[Served]:
    settings = ServiceSettings(**service_settings(stack, stack.pg.dsn()))
    app = create_service_app(ServiceSpec(name="crashes", title="Crashes", description="Routes that fail",
                                         routers=[router], publishes=False), settings)
    port = free_port()
    # log_config=None: uvicorn's own loggers propagate to the root, so a second report of the error would be seen.
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, log_level="info"))
    logs = Records()
    root = logging.getLogger()
    root.addHandler(logs)
    task = asyncio.create_task(server.serve())
    try:

        async def started() -> bool:
            return server.started

        await eventually(started, "uvicorn to start", timeout=20)
        yield Served(f"http://127.0.0.1:{port}", logs)
    finally:
        server.should_exit = True
        await task
        root.removeHandler(logs)


async def record_port(response: httpx.Response) -> None:
    """Notes the client's port of the connection that carried the response (read as its headers arrive)."""
    response.extensions["client_port"] = response.extensions["network_stream"].get_extra_info("client_addr")[1]


def tracebacks(logs: Records) -> Iterator[logging.LogRecord]:
    return (record for record in logs.records if record.exc_info is not None)


async def test_an_unexpected_error_is_a_generic_500_problem_and_the_connection_stays_usable(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url, timeout=10, event_hooks={"response": [record_port]}) as client:
        warm = await client.get("/fine")
        crashed = await client.get("/crash", headers={"X-Request-ID": "trace-the-crash"})
        after = await client.get("/fine")
    ports = [r.extensions["client_port"] for r in (warm, crashed, after)]
    assert len(set(ports)) == 1, f"the server dropped the connection: {ports}"
    assert crashed.status_code == 500
    assert crashed.headers["content-type"] == "application/problem+json"
    assert crashed.headers["x-request-id"] == "trace-the-crash"
    body = crashed.json()
    assert body["status"] == 500 and body["type"].endswith("/internal-server-error")
    assert body["request_id"] == "trace-the-crash" and body["instance"] == "/crash"
    assert "year 0" not in crashed.text and "Traceback" not in crashed.text  # nothing of the internals
    assert "connection" not in crashed.headers or crashed.headers["connection"] != "close"
    assert after.status_code == 200
    reported = list(tracebacks(served.logs))
    assert len(reported) == 1, [r.getMessage() for r in reported]
    assert "year 0 is out of range" in logging.Formatter().formatException(reported[0].exc_info)  # type: ignore[arg-type]


async def test_an_error_after_the_response_started_cuts_it_short_without_hanging(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as client:
        async with asyncio.timeout(5):
            with pytest.raises(httpx.RemoteProtocolError):  # not a complete-looking 200 with half the rows
                await client.get("/crash-mid-stream")
        assert (await client.get("/fine")).status_code == 200
    reported = [r for r in tracebacks(served.logs) if "half way" in
                logging.Formatter().formatException(r.exc_info)]  # type: ignore[arg-type]
    assert len(reported) == 1
