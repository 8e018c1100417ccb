"""The fault tests' TCP proxy (tests/support/netproxy.py): each mode does what it says, against a local echo server
reached by TCP or by a unix socket."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.netproxy import NetProxy
from tests.support.waiting import eventually


@dataclass
class Echo:
    """An upstream that echoes every chunk and remembers what it received and how many connections it had."""

    received: bytearray = field(default_factory=bytearray)
    connections: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while data := await reader.read(4096):
                self.received += data
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()


@pytest.fixture(params=["tcp", "unix"])
async def echo_proxy(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Echo, NetProxy]]:
    echo = Echo()
    upstream: tuple[str, int] | Path
    if request.param == "tcp":
        server = await asyncio.start_server(echo.handle, "127.0.0.1", 0)
        upstream = ("127.0.0.1", int(server.sockets[0].getsockname()[1]))
    else:
        upstream = tmp_path / "echo.sock"
        server = await asyncio.start_unix_server(echo.handle, upstream)
    async with server, NetProxy(upstream) as proxy:
        yield echo, proxy
        server.close()


async def connect(proxy: NetProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(proxy.host, proxy.port)


async def round_trip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes,
                     timeout: float = 5) -> bytes:
    writer.write(data)
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(len(data)), timeout)


async def test_pass_through_forwards_both_ways(echo_proxy: tuple[Echo, NetProxy]) -> None:
    echo, proxy = echo_proxy
    reader, writer = await connect(proxy)
    big = bytes(range(256)) * 4096  # 1 MiB: many chunks, flow control both ways
    assert await round_trip(reader, writer, b"ping") == b"ping"
    assert await round_trip(reader, writer, big) == big
    assert bytes(echo.received) == b"ping" + big
    writer.close()
    await writer.wait_closed()


    async def gone() -> bool:  # the client's close closes the upstream side too, and the link is gone
        return proxy.connections == 0

    await eventually(gone, "the proxy to drop the closed link", timeout=5, interval=0.01)


async def test_latency_delays_each_chunk_and_can_be_lifted(echo_proxy: tuple[Echo, NetProxy]) -> None:
    _, proxy = echo_proxy
    reader, writer = await connect(proxy)
    started = time.monotonic()
    await round_trip(reader, writer, b"fast")
    fast = time.monotonic() - started

    proxy.latency(150)
    started = time.monotonic()
    assert await round_trip(reader, writer, b"slow") == b"slow"
    slow = time.monotonic() - started
    assert slow >= 0.29, f"two chunks (there and back) at 150 ms each took {slow:.3f}s"  # 10 ms of timer slack
    assert fast < 0.1

    proxy.pass_through()
    started = time.monotonic()
    await round_trip(reader, writer, b"fast again")
    assert time.monotonic() - started < 0.1
    writer.close()


async def test_reset_aborts_current_connections_and_new_ones_until_lifted(echo_proxy: tuple[Echo, NetProxy]) -> None:
    echo, proxy = echo_proxy
    reader, writer = await connect(proxy)
    await round_trip(reader, writer, b"before")

    proxy.reset()
    # A RST, not a clean end of stream: the client's read fails with ECONNRESET instead of returning b"".
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(10), 5)
    writer.close()

    new_reader, new_writer = await connect(proxy)  # accepted, then reset at once
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(new_reader.read(10), 5)
    new_writer.close()
    assert echo.connections == 1 and proxy.resets >= 2

    proxy.pass_through()
    reader, writer = await connect(proxy)
    assert await round_trip(reader, writer, b"after") == b"after"
    assert echo.connections == 2
    writer.close()


async def test_an_unreachable_upstream_resets_the_client(tmp_path: Path) -> None:
    async with NetProxy(tmp_path / "nobody-listens.sock") as proxy:
        reader, writer = await connect(proxy)
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(10), 5)
        writer.close()


async def test_blackhole_holds_connections_and_forwards_nothing(echo_proxy: tuple[Echo, NetProxy]) -> None:
    echo, proxy = echo_proxy
    reader, writer = await connect(proxy)
    await round_trip(reader, writer, b"before")

    proxy.blackhole()
    writer.write(b"into the hole")
    await writer.drain()
    held_reader, held_writer = await connect(proxy)  # a new connection is accepted and held
    held_writer.write(b"also lost")
    await held_writer.drain()
    for r in (reader, held_reader):
        with pytest.raises(TimeoutError):  # neither an answer nor the end of the stream: the connection hangs
            await asyncio.wait_for(r.read(10), 0.5)
    assert bytes(echo.received) == b"before"
    assert echo.connections == 1  # the held connection never reached the upstream
    assert proxy.connections == 2 and proxy.dropped_bytes == len(b"into the hole") + len(b"also lost")

    proxy.pass_through()
    # The connections that fell into the hole stay there; new ones are forwarded.
    writer.write(b"still lost")
    await writer.drain()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(10), 0.3)
    fresh_reader, fresh_writer = await connect(proxy)
    assert await round_trip(fresh_reader, fresh_writer, b"after") == b"after"
    assert bytes(echo.received) == b"beforeafter"
    for w in (writer, held_writer, fresh_writer):
        w.close()


async def test_blackhole_of_replies_delivers_requests_and_drops_their_answers(
        echo_proxy: tuple[Echo, NetProxy]) -> None:
    echo, proxy = echo_proxy
    reader, writer = await connect(proxy)
    await round_trip(reader, writer, b"before")

    proxy.blackhole(replies_only=True)
    writer.write(b"request")
    await writer.drain()
    new_reader, new_writer = await connect(proxy)  # a new connection reaches the upstream; its answers are lost too
    new_writer.write(b"another")
    await new_writer.drain()
    for r in (reader, new_reader):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(r.read(10), 0.5)
    assert bytes(echo.received) in (b"beforerequestanother", b"beforeanotherrequest")  # the requests got through
    assert echo.connections == 2 and proxy.dropped_bytes == len(b"request") + len(b"another")

    proxy.pass_through()
    fresh_reader, fresh_writer = await connect(proxy)
    assert await round_trip(fresh_reader, fresh_writer, b"after") == b"after"
    for w in (writer, new_writer, fresh_writer):
        w.close()


async def test_stop_closes_the_port_and_every_connection(echo_proxy: tuple[Echo, NetProxy]) -> None:
    _, proxy = echo_proxy
    reader, writer = await connect(proxy)
    await round_trip(reader, writer, b"x")
    await proxy.stop()
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
        await asyncio.wait_for(reader.readexactly(1), 5)
    with pytest.raises(OSError):
        await connect(proxy)
    writer.close()
