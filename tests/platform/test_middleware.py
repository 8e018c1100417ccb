"""Every middleware of every service is pure ASGI: no `BaseHTTPMiddleware` (nor `@app.middleware("http")`, which is
one), whose per-request task, body streaming through a memory channel and context copy cost every request."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from starlette.middleware.base import BaseHTTPMiddleware

from tests.support.documents import SERVICES


def _middleware_chain(app: Any) -> list[Any]:
    """The middleware instances a request passes through, outermost first, down to the router."""
    stack = app.build_middleware_stack()
    chain = []
    while stack is not None and stack is not app.router:
        chain.append(stack)
        stack = getattr(stack, "app", None)
    return chain


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_runs_a_base_http_middleware(service: str) -> None:
    app = importlib.import_module(f"services.{service}.app").create_app()
    chain = _middleware_chain(app)
    names = [type(m).__name__ for m in chain]
    assert {"Observe", "BodyLimit", "UnexpectedErrors"} <= set(names), names
    assert not [m for m in chain if isinstance(m, BaseHTTPMiddleware)], names
