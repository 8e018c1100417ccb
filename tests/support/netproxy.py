"""A small TCP proxy for fault tests, in the spirit of Toxiproxy (which cannot be installed here).

It listens on one loopback port and forwards each connection to one upstream: a TCP `host:port` or a unix socket
(the embedded PostgreSQL listens only on a unix socket). Its mode can be switched at any time and applies to every
connection, current and new:

- `pass_through()`: bytes flow both ways unchanged;
- `latency(ms)`: each chunk read from either side is held `ms` milliseconds before it is forwarded;
- `reset()`: every current connection is aborted with a TCP RST (SO_LINGER 0) on both sides, and every new one is
  reset as soon as it is accepted, until the mode changes;
- `blackhole()`: connections are accepted and held open but nothing is forwarded (what arrives is read and dropped).
  A connection that has fallen into the hole stays in it after the mode changes (its byte stream has a gap, as a
  connection whose path died): the client must notice by its own timeouts. New connections after a change are
  forwarded normally;
- `blackhole(replies_only=True)`: what clients send still reaches the upstream, but its replies are dropped: requests
  take effect and their acknowledgements are lost (the ambiguous failure that makes a producer send twice).

When either side of a forwarded connection closes, the other side is closed too (no half-closed connections, which
neither PostgreSQL's nor Kafka's protocol uses). The proxy runs in the caller's event loop: do not block that loop
(call blocking helpers such as `EmbeddedPostgres.stop` through `asyncio.to_thread`) while it should forward.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
import struct
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

#: Bytes read from one side at a time.
CHUNK = 65536


class Mode(enum.Enum):
    PASS_THROUGH = "pass-through"
    LATENCY = "latency"
    RESET = "reset"
    BLACKHOLE = "blackhole"


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close a connection at once, with a RST instead of a FIN on TCP (SO_LINGER on, linger time 0)."""
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass(eq=False)
class _Link:
    """One client connection and, once connected, its upstream connection."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    #: The directions (True: client to upstream) that fell into the hole: they forward nothing any more.
    holes: set[bool] = field(default_factory=set)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                _abort(writer)


class NetProxy:
    """`NetProxy(upstream=("127.0.0.1", 9092))` or `NetProxy(upstream=Path("/data/.s.PGSQL.5432"))`; use it as an
    async context manager (or `start()` / `stop()`), point clients at `address`, switch modes while they run."""

    def __init__(self, upstream: tuple[str, int] | Path, *, host: str = "127.0.0.1", port: int = 0,
                 connect_timeout: float = 5.0) -> None:
        self.upstream = upstream
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self.mode = Mode.PASS_THROUGH
        self.latency_ms = 0.0
        self.replies_only = False
        #: Counters for tests of the proxy itself and for diagnostics.
        self.accepted = 0
        self.resets = 0
        self.dropped_bytes = 0
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()

    @property
    def address(self) -> str:
        """`host:port` to give clients (Kafka bootstrap servers, the host and port of a database URL)."""
        return f"{self.host}:{self.port}"

    @property
    def connections(self) -> int:
        """Connections open right now (forwarded or held in the hole)."""
        return len(self._links)

    async def start(self) -> NetProxy:
        self._server = await asyncio.start_server(self._accept, self.host, self.port, reuse_address=True)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        tasks = [task for link in self._links for task in link.tasks]
        for link in list(self._links):
            link.abort()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._links.clear()

    async def __aenter__(self) -> NetProxy:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    # The modes.

    def pass_through(self) -> None:
        self.mode = Mode.PASS_THROUGH

    def latency(self, ms: float) -> None:
        self.latency_ms = ms
        self.mode = Mode.LATENCY

    def blackhole(self, *, replies_only: bool = False) -> None:
        """Forward nothing (or, with `replies_only`, nothing from the upstream back to the client)."""
        self.replies_only = replies_only
        self.mode = Mode.BLACKHOLE

    def reset(self) -> None:
        """Abort every current connection with a RST, and reset new ones until the mode changes."""
        self.mode = Mode.RESET
        for link in list(self._links):
            link.abort()
            self.resets += 1

    # The forwarding.

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.mode is Mode.RESET:
            self.resets += 1
            _abort(writer)
            return
        link = _Link(writer)
        self._links.add(link)
        try:
            if self.mode is Mode.BLACKHOLE and not self.replies_only:
                link.holes = {True, False}
                await self._run(link, self._pipe(reader, None, link, from_client=True))
                return
            try:
                async with asyncio.timeout(self.connect_timeout):
                    if isinstance(self.upstream, Path):
                        up_reader, up_writer = await asyncio.open_unix_connection(self.upstream)
                    else:
                        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            except (OSError, TimeoutError):
                # The upstream is down: the client sees its connection reset, as it would by a real refusal.
                self.resets += 1
                _abort(writer)
                return
            link.upstream = up_writer
            if self.mode is Mode.RESET:  # switched while connecting
                link.abort()
                return
            await self._run(link, self._pipe(reader, up_writer, link, from_client=True),
                            self._pipe(up_reader, writer, link, from_client=False))
        finally:
            self._links.discard(link)
            for side in (link.client, link.upstream):
                if side is not None and not side.is_closing():
                    side.close()

    async def _run(self, link: _Link, *pipes: Coroutine[Any, Any, None]) -> None:
        """Run the pipes of a link until one of them ends (a side closed or failed), then end the others."""
        link.tasks = [asyncio.ensure_future(pipe) for pipe in pipes]
        try:
            await asyncio.wait(link.tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in link.tasks:
                task.cancel()
            await asyncio.gather(*link.tasks, return_exceptions=True)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter | None, link: _Link, *,
                    from_client: bool) -> None:
        """Copy one direction of a link, applying the current mode to every chunk."""
        with contextlib.suppress(OSError):  # a reset side: the link ends
            while data := await source.read(CHUNK):
                if self.mode is Mode.LATENCY and from_client not in link.holes:
                    await asyncio.sleep(self.latency_ms / 1000)
                if self.mode is Mode.BLACKHOLE and not (self.replies_only and from_client):
                    link.holes |= {False} if self.replies_only else {True, False}
                if from_client in link.holes or sink is None:
                    self.dropped_bytes += len(data)
                    continue
                sink.write(data)
                await sink.drain()
