"""Upstream host resolution (litemesh.proxy.resolve) through a real pool: real loops (asyncio and
uvloop), real getaddrinfo, real sockets on 127.0.0.1.

Names: ``localhost`` (in /etc/hosts) for the good case and ``*.invalid`` (RFC 6761: never
resolves, fails at once) for the bad one; no test depends on outside DNS.  Where a test needs an
answer the system resolver cannot give (two addresses, a name that starts resolving), its lookup
wraps the real ``loop.getaddrinfo`` and only chooses which real name to resolve.
"""
from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import pytest
import uvloop

from litemesh.errors import UpstreamError
from litemesh.proxy.pool import UpstreamPool
from litemesh.proxy.resolve import DEFAULT_RESOLVE_INTERVAL

pytestmark = pytest.mark.timeout(30)

BAD_NAME = "nothing-here.invalid"


@pytest.fixture(params=["asyncio", "uvloop"])
def loop(request):  # type: ignore[no-untyped-def]
    loop = asyncio.new_event_loop() if request.param == "asyncio" else uvloop.new_event_loop()
    yield loop
    loop.close()


class _Origin:
    """A listener on 127.0.0.1 that accepts and holds connections (the pool only opens them)."""

    def __init__(self) -> None:
        self.server: asyncio.AbstractServer | None = None
        self.transports: list[asyncio.BaseTransport] = []

    def close(self) -> None:
        assert self.server is not None
        self.server.close()
        for transport in self.transports:
            transport.close()


async def _origin(loop: asyncio.AbstractEventLoop) -> tuple[_Origin, int]:
    origin = _Origin()

    class Accepting(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            origin.transports.append(transport)

    origin.server = await loop.create_server(Accepting, "127.0.0.1", 0)
    return origin, origin.server.sockets[0].getsockname()[1]


def _run(loop: asyncio.AbstractEventLoop, main: Any) -> None:
    loop.run_until_complete(main())
    loop.run_until_complete(asyncio.sleep(0.05))  # let the closes scheduled by main() run


class CountingLookup:
    """The loop's real getaddrinfo, counting calls; ``names`` maps the asked name to the one looked up."""

    def __init__(self, loop: asyncio.AbstractEventLoop, names: dict[str, str] | None = None) -> None:
        self.loop = loop
        self.names = names or {}
        self.calls = 0
        self.gate: asyncio.Event | None = None  # when set: lookups wait for it

    async def __call__(self, host: str, port: int, **kwargs: Any) -> list:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        return await self.loop.getaddrinfo(self.names.get(host, host), port, **kwargs)


def _pool(loop, host: str, port: int, lookup=None, **settings) -> UpstreamPool:  # type: ignore[no-untyped-def]
    pool = UpstreamPool(loop, host, port, service="svc", **settings)
    if lookup is not None:
        pool.resolver._lookup = lookup  # type: ignore[union-attr]
    return pool


async def _wait_until_expired(pool: UpstreamPool, loop: asyncio.AbstractEventLoop) -> None:
    while loop.time() < pool.resolver.expires:  # type: ignore[union-attr]
        await asyncio.sleep(0.02)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "litemesh.upstream" and r.levelno == logging.WARNING]


def test_ip_literals_get_no_resolver(loop) -> None:  # type: ignore[no-untyped-def]
    assert UpstreamPool(loop, "127.0.0.1", 80).resolver is None
    assert UpstreamPool(loop, "::1", 80).resolver is None
    assert UpstreamPool(loop, "localhost", 80).resolver is not None
    assert UpstreamPool(loop, "localhost", 80).resolve_interval == DEFAULT_RESOLVE_INTERVAL == 30.0


def test_a_name_is_resolved_once_per_interval_and_connected_to(loop) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        server, port = await _origin(loop)
        lookup = CountingLookup(loop)
        pool = _pool(loop, "localhost", port, lookup)
        conns = [await pool.connect() for _ in range(5)]
        assert pool.opened == 5 and lookup.calls == 1
        assert all(c.transport.get_extra_info("peername")[:2] == ("127.0.0.1", port) for c in conns)
        for conn in conns:
            conn.close()
        pool.close()
        server.close()

    _run(loop, main)


def test_concurrent_connects_share_one_lookup(loop) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        server, port = await _origin(loop)
        lookup = CountingLookup(loop)
        lookup.gate = asyncio.Event()
        pool = _pool(loop, "localhost", port, lookup)
        connects = [loop.create_task(pool.connect()) for _ in range(20)]
        await asyncio.sleep(0.05)
        lookup.gate.set()
        conns = await asyncio.gather(*connects)
        assert lookup.calls == 1 and pool.opened == 20
        for conn in conns:
            conn.close()
        pool.close()
        server.close()

    _run(loop, main)


def test_an_unresolvable_name_is_answered_502_and_logged_once_per_lookup(loop, caplog):  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="litemesh.upstream")

    async def main() -> None:
        lookup = CountingLookup(loop)
        pool = _pool(loop, BAD_NAME, 80, lookup, resolve_interval=0.3)
        for _ in range(10):
            with pytest.raises(UpstreamError) as info:
                await pool.connect()
            error = info.value
            assert (error.status, error.kind, error.logged) == (502, "upstream_unresolvable", True)
            assert BAD_NAME in error.message
        assert lookup.calls == 1 and pool.opened == 0
        assert len(_warnings(caplog)) == 1
        await _wait_until_expired(pool, loop)
        for _ in range(5):  # the interval is over: one more lookup, one more warning
            with pytest.raises(UpstreamError):
                await pool.connect()
        assert lookup.calls == 2
        assert len(_warnings(caplog)) == 2
        pool.close()

    _run(loop, main)
    warning = _warnings(caplog)[0]
    assert f"upstream host {BAD_NAME!r} does not resolve" in warning and "service 'svc'" in warning


def test_a_name_that_starts_resolving_is_logged_once_and_used(loop, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="litemesh.upstream")

    async def main() -> None:
        server, port = await _origin(loop)
        lookup = CountingLookup(loop, {"backend.test": BAD_NAME})
        pool = _pool(loop, "backend.test", port, lookup, resolve_interval=0.2)
        with pytest.raises(UpstreamError):
            await pool.connect()
        lookup.names["backend.test"] = "localhost"  # the record appears
        await _wait_until_expired(pool, loop)
        conn = await pool.connect()  # had no addresses: waits for the new lookup
        assert lookup.calls == 2 and pool.opened == 1
        conn.close()
        pool.close()
        server.close()

    _run(loop, main)
    infos = [r.getMessage() for r in caplog.records if r.name == "litemesh.upstream" and r.levelno == logging.INFO]
    assert infos == ["service 'svc': upstream host 'backend.test' resolves again: 127.0.0.1"]


def test_a_stale_answer_serves_while_the_refresh_runs(loop) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        server, port = await _origin(loop)
        lookup = CountingLookup(loop)
        pool = _pool(loop, "localhost", port, lookup, resolve_interval=0.2)
        (await pool.connect()).close()
        await _wait_until_expired(pool, loop)
        lookup.gate = asyncio.Event()  # the refresh hangs...
        conn = await asyncio.wait_for(pool.connect(), 5)  # ...and the connect does not wait for it
        assert lookup.calls == 2 and pool.resolver._task is not None  # type: ignore[union-attr]
        lookup.gate.set()
        while pool.resolver._task is not None:  # type: ignore[union-attr]
            await asyncio.sleep(0.01)
        assert loop.time() < pool.resolver.expires  # type: ignore[union-attr]
        conn.close()
        pool.close()
        server.close()

    _run(loop, main)


def test_the_next_address_is_tried_when_one_refuses(loop) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        server, port = await _origin(loop)
        inet = (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "")

        async def two_addresses(host: str, port_: int, **kwargs: Any) -> list:
            # nothing listens on 127.0.0.2:port (the origin is bound to 127.0.0.1): refused
            return [(*inet, ("127.0.0.2", port_)), (*inet, ("127.0.0.1", port_))]

        pool = _pool(loop, "two.test", port, two_addresses)
        conn = await pool.connect()
        assert conn.transport.get_extra_info("peername")[:2] == ("127.0.0.1", port)
        conn.close()

        async def refused_only(host: str, port_: int, **kwargs: Any) -> list:
            return [(*inet, ("127.0.0.2", port_))]

        pool2 = _pool(loop, "one.test", port, refused_only)
        with pytest.raises(UpstreamError) as info:
            await pool2.connect()
        assert (info.value.status, info.value.kind) == (502, "upstream_connect_failed")
        pool.close()
        pool2.close()
        server.close()

    _run(loop, main)


def test_a_connect_timeout_does_not_cancel_the_shared_lookup(loop) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        server, port = await _origin(loop)
        lookup = CountingLookup(loop)
        lookup.gate = asyncio.Event()
        pool = _pool(loop, "localhost", port, lookup, connect_timeout=0.2)
        with pytest.raises(UpstreamError) as info:
            await pool.connect()
        assert (info.value.status, info.value.kind) == (504, "upstream_connect_timeout")
        lookup.gate.set()
        conn = await asyncio.wait_for(pool.connect(), 5)  # the same lookup finished meanwhile
        assert lookup.calls == 1
        conn.close()
        pool.close()
        server.close()

    _run(loop, main)


def test_a_reload_changes_the_interval(loop) -> None:  # type: ignore[no-untyped-def]
    from litemesh.proxy.pool import PoolRegistry

    registry = PoolRegistry(loop)
    pool = registry.get("svc", "localhost", 80, resolve_interval=5.0)
    assert registry.get("svc", "localhost", 80, resolve_interval=7.0) is pool
    assert pool.resolver.interval == pool.resolve_interval == 7.0  # type: ignore[union-attr]
    registry.get("svc", "127.0.0.1", 80, resolve_interval=7.0)  # no resolver: nothing to set
    registry.close()


def test_a_connect_runs_in_the_callers_task_alone(loop) -> None:  # type: ignore[no-untyped-def]
    """A burst of new upstream connections costs one task each (the exchange's), not two."""
    created: list[Any] = []

    def counting_factory(loop, coro, **kwargs):  # type: ignore[no-untyped-def]
        created.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    async def main() -> None:
        server, port = await _origin(loop)
        pool = _pool(loop, "127.0.0.1", port)
        loop.set_task_factory(counting_factory)
        try:
            conn = await loop.create_task(pool.connect())
        finally:
            loop.set_task_factory(None)
        # (asyncio's own loop accepts the origin's side in a task of its own)
        ours = [coro for coro in created if "_accept_connection" not in str(getattr(coro, "__qualname__", ""))]
        assert len(ours) == 1 and pool.opened == 1
        conn.close()
        pool.close()
        server.close()

    _run(loop, main)


def test_a_connect_cancelled_from_outside_stays_a_cancel(loop) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        server, port = await _origin(loop)
        lookup = CountingLookup(loop)
        lookup.gate = asyncio.Event()  # the lookup waits: the connect is in progress when cancelled
        pool = _pool(loop, "localhost", port, lookup, connect_timeout=0.3)
        task = loop.create_task(pool.connect())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.4)  # past the connect timeout: its timer was cancelled with the connect
        assert task.cancelled() and pool.opened == 0
        lookup.gate.set()
        pool.close()
        server.close()

    _run(loop, main)


def test_new_connections_start_a_batch_per_loop_turn(loop) -> None:  # type: ignore[no-untyped-def]
    """A burst of requests that all need a new connection starts them CONNECTS_PER_TURN per turn
    of the loop, in order: other events get their turn between batches."""
    from litemesh.proxy.pool import CONNECTS_PER_TURN

    async def main() -> None:
        pool = _pool(loop, "127.0.0.1", 9)
        started: list[int] = []
        wanted = 2 * CONNECTS_PER_TURN + 22
        for index in range(wanted):
            pool.open_soon(lambda index=index: started.append(index))
        assert started == []
        seen = [0]
        for _ in range(20):
            await asyncio.sleep(0)
            seen.append(len(started))
            if len(started) == wanted:
                break
        steps = [after - before for before, after in zip(seen, seen[1:]) if after != before]
        assert started == list(range(wanted))
        assert max(steps) <= CONNECTS_PER_TURN and len(steps) >= 3
        pool.close()

    _run(loop, main)
