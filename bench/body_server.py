"""The read baseline's HTTP half (issue 13): an authenticated GET that returns a body of a chosen size.

A Starlette app in a thread of its own (uvicorn, its own event loop) verifies the bearer token as the services
do (shared/auth.py TokenVerifier, HS256 with the dev secret) and answers `GET /body?n=N` with N bytes of JSON:
the cost of the framework, the token and the transfer of an answer of that size, without computing anything.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shared.auth import TokenVerifier
from shared.settings import DEV_JWT_SECRET, ServiceSettings


def _app() -> Starlette:
    verifier = TokenVerifier(ServiceSettings(auth_jwt_secret=DEV_JWT_SECRET))

    async def body(request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return JSONResponse({"title": "unauthorized"}, status_code=401)
        await verifier.verify(token)
        size = int(request.query_params.get("n", "2"))
        return Response(b'"' + b"x" * max(size - 2, 0) + b'"', media_type="application/json")

    return Starlette(routes=[Route("/body", body)])


class BodyServer:
    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(_app(), host="127.0.0.1", port=self.port, log_level="warning",
                                                     access_log=False))
        self._thread = threading.Thread(target=lambda: asyncio.run(self._server.serve()), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> BodyServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("the baseline body server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)
