"""Per-worker keep-alive pool of upstream connections to one target.

Idle connections are a LIFO stack: the most recently used one is the least likely to have been
closed by the upstream's own keep-alive timer.  A connection the upstream closes while idle removes
itself (``connection_lost`` → :meth:`UpstreamPool.discard`); one that died unnoticed is caught by
the reuse check in :meth:`acquire` and, if the request was sent on it before the close was seen,
by the exchange's retry-on-reused-connection rule.  Expired idle connections are closed by a sweep
that runs only while there are idle connections.

A target named by a host name gets a :class:`~litemesh.proxy.resolve.HostResolver`: new
connections go to its cached addresses (the next one on a connect failure) instead of resolving
the name on every connect; an IP literal is connected to directly.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Callable

from ..config.units import is_ip_literal
from ..errors import UpstreamError
from .deadline import TimerWheel
from .resolve import DEFAULT_RESOLVE_INTERVAL, HostResolver

if TYPE_CHECKING:
    from .upstream import UpstreamConnection


#: new connections a pool starts opening per turn of the event loop; the others wait for the next
#: turn, so that a burst of requests that all need one does not hold up every other event (a probe
#: request on a pooled connection, say) for the whole batch of socket/connect calls
CONNECTS_PER_TURN = 64


class UpstreamPool:
    __slots__ = ("loop", "clock", "wheel", "host", "port", "max_idle", "idle_timeout", "max_requests",
                 "connect_timeout", "idle", "_sweep", "opened", "closed", "resolver", "_to_open", "_opening_turn")

    def __init__(self, loop: asyncio.AbstractEventLoop, host: str, port: int, *, max_idle: int = 1024,
                 idle_timeout: float = 60.0, max_requests: int = 0, connect_timeout: float = 5.0,
                 resolve_interval: float = DEFAULT_RESOLVE_INTERVAL, service: str = "") -> None:
        self.loop = loop
        self.clock = loop.time  # (bound once: the pool's connections and their deadlines share it)
        self.wheel = TimerWheel(loop, self.clock)  # the deadlines of the pool's connections
        self.host = host
        self.port = port
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self.max_requests = max_requests
        self.connect_timeout = connect_timeout
        self.idle: list[UpstreamConnection] = []
        self._sweep: asyncio.TimerHandle | None = None
        self.opened = 0  # connections ever opened (tests and metrics)
        self._to_open: list[Callable[[], None]] = []  # starters of connects waiting for their turn
        self._opening_turn = False  # a turn of _open_some is scheduled
        self.closed = False
        self.resolver = None if is_ip_literal(host) else HostResolver(loop, host, port, interval=resolve_interval,
                                                                      service=service)

    @property
    def resolve_interval(self) -> float:
        resolver = self.resolver
        return resolver.interval if resolver is not None else DEFAULT_RESOLVE_INTERVAL

    @resolve_interval.setter
    def resolve_interval(self, value: float) -> None:  # a reload may change it (PoolRegistry.get)
        if self.resolver is not None:
            self.resolver.interval = value

    def acquire(self) -> "UpstreamConnection | None":
        """An idle connection that still looks usable, or None."""
        idle = self.idle
        now = 0.0
        while idle:
            conn = idle.pop()
            if conn.transport.is_closing():
                continue
            if not now:
                now = self.clock()
            if now - conn.idle_since >= self.idle_timeout:
                conn.close()
                continue
            return conn
        return None

    def open_soon(self, start: Callable[[], None]) -> None:
        """Call ``start`` (which begins a :meth:`connect`) in a coming turn of the event loop, at
        most ``CONNECTS_PER_TURN`` of them per turn, in the order asked."""
        self._to_open.append(start)
        if not self._opening_turn:
            self._opening_turn = True
            self.loop.call_soon(self._open_some)

    def _open_some(self) -> None:
        waiting = self._to_open
        batch = waiting[:CONNECTS_PER_TURN]
        del waiting[:CONNECTS_PER_TURN]
        if waiting:
            self.loop.call_soon(self._open_some)  # (after the loop polled for I/O again)
        else:
            self._opening_turn = False
        for start in batch:
            start()

    async def connect(self) -> "UpstreamConnection":
        """A new connection; the connect timeout covers waiting for a lookup and every address tried.

        Raises:
            UpstreamError: 504 on timeout, 502 when no address accepts or the host does not resolve.
        """
        # The timeout cancels this task itself (asyncio.wait_for would run _open in a second task:
        # twice the tasks when a burst of requests opens connections at once).
        task = asyncio.current_task()
        expired: list[bool] = []
        timer = self.loop.call_later(self.connect_timeout, _expire, task, expired)
        try:
            conn = await self._open()
        except asyncio.CancelledError:
            if not expired:
                raise  # cancelled from outside: not ours to turn into an answer
            uncancel = getattr(task, "uncancel", None)  # (3.11+: the cancel was ours and is handled)
            if uncancel is not None:
                uncancel()
            raise UpstreamError(504, "upstream_connect_timeout", "upstream connect timed out", retryable=True) from None
        except OSError as exc:
            raise UpstreamError(502, "upstream_connect_failed", f"upstream connect failed: {exc.strerror or exc}",
                                retryable=True) from None
        finally:
            timer.cancel()
        self.opened += 1
        return conn

    async def _open(self) -> "UpstreamConnection":
        from .upstream import UpstreamConnection

        def factory() -> UpstreamConnection:
            return UpstreamConnection(self)

        if self.resolver is None:
            _, conn = await self.loop.create_connection(factory, self.host, self.port)
            return conn
        failure: OSError | None = None
        for family, _, proto, _, sockaddr in await self.resolver.resolve():
            try:  # a numeric host: the loop connects without a lookup of its own
                _, conn = await self.loop.create_connection(factory, sockaddr[0], sockaddr[1], family=family,
                                                            proto=proto)
                return conn
            except OSError as exc:
                failure = exc
        assert failure is not None  # resolve() returns at least one address or raises
        raise failure

    def release(self, conn: "UpstreamConnection") -> None:
        """Take back a connection whose exchange finished cleanly; close it if we keep enough."""
        if (self.closed or len(self.idle) >= self.max_idle or conn.transport.is_closing()
                or (self.max_requests and conn.requests >= self.max_requests)):
            conn.close()
            return
        # The last response bytes may have filled the client's buffer and paused our reading; an idle
        # connection must read again, both to see the upstream close it and to serve the next exchange.
        conn.transport.resume_reading()
        conn.idle_since = self.clock()
        self.idle.append(conn)
        if self._sweep is None:
            self._sweep = self.loop.call_later(self.idle_timeout, self._expire)

    def discard(self, conn: "UpstreamConnection") -> None:
        try:
            self.idle.remove(conn)
        except ValueError:
            pass

    def _expire(self) -> None:
        self._sweep = None
        deadline = self.clock() - self.idle_timeout
        keep = []
        for conn in self.idle:
            if conn.idle_since <= deadline:
                conn.close()
            else:
                keep.append(conn)
        self.idle[:] = keep
        if keep:
            # wake when the oldest remaining connection expires
            self._sweep = self.loop.call_at(keep[0].idle_since + self.idle_timeout, self._expire)

    def close(self) -> None:
        self.closed = True
        if self.resolver is not None:
            self.resolver.close()
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        idle, self.idle = self.idle, []
        for conn in idle:
            conn.close()


class PoolRegistry:
    """The worker's pools, keyed by (service, host, port), so a config reload keeps warm connections."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pools: dict[tuple[str, str, int], UpstreamPool] = {}

    def get(self, service: str, host: str, port: int, **settings: float) -> UpstreamPool:
        key = (service, host, port)
        pool = self.pools.get(key)
        if pool is None:
            pool = self.pools[key] = UpstreamPool(self.loop, host, port, service=service,
                                                  **settings)  # type: ignore[arg-type]
        else:
            for name, value in settings.items():
                setattr(pool, name, value)
        return pool

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()


def _expire(task: "asyncio.Task[Any]", expired: list[bool]) -> None:
    """The connect timeout of ``UpstreamPool.connect``: mark it as ours, then cancel the task."""
    if not task.done():
        expired.append(True)
        task.cancel()
