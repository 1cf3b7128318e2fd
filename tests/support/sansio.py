"""The proxy's request path driven without sockets or an event loop: exact inputs, any split.

:class:`ProxyHarness` wires the real pieces — ``DownstreamProtocol``, ``Exchange``,
``UpstreamConnection`` and its pool, compiled from a real config — to in-memory transports on a
virtual clock.  A test (or a fuzz target) sends client bytes, feeds upstream response bytes in the
pieces it chooses, and reads what the client would have received, whether each side was closed,
and whether the upstream connection went back to the pool.  Deliberately small: one client
connection, one upstream connection, already open (the pool hands it out).
"""
from __future__ import annotations

import functools
import re
from typing import Any, Callable

from litemesh.config import load_config_text
from litemesh.proxy.pool import PoolRegistry
from litemesh.proxy.snapshot import compile_snapshot
from litemesh.proxy.upstream import UpstreamConnection
from litemesh.server.protocol import DownstreamProtocol
from litemesh.server.state import WorkerState

_CONFIG = """\
server: {via: "", request_id_header: ""}
services: [{name: up, targets: ["127.0.0.1:9"], timeouts: {read: 30s}}]
routes:
  - {name: all, paths: ["/"], service: up}
"""

_DATE = re.compile(rb"\r\nDate: [^\r\n]*")


@functools.lru_cache(maxsize=8)
def _config(text: str):  # type: ignore[no-untyped-def]
    return load_config_text(text, "<harness>")  # frozen: safe to share between harnesses


class VirtualLoop:
    """time / call_at / call_later / create_task on a clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.timers: list[_Timer] = []
        self.tasks: list[Any] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[..., None], *args: Any) -> "_Timer":
        timer = _Timer(when, callback, args)
        self.timers.append(timer)
        return timer

    def call_later(self, delay: float, callback: Callable[..., None], *args: Any) -> "_Timer":
        return self.call_at(self.now + delay, callback, *args)

    def call_soon(self, callback: Callable[..., None], *args: Any) -> "_Timer":
        return self.call_at(self.now, callback, *args)  # (runs at the next advance)

    def create_task(self, coro: Any) -> None:
        coro.close()  # the harness pre-opens the upstream connection: nothing may need a new one
        raise AssertionError("the request path asked for a new upstream connection")

    def advance(self, seconds: float) -> None:
        until = self.now + seconds
        while True:
            due = sorted((t for t in self.timers if not t.cancelled and t.when <= until), key=lambda t: t.when)
            if not due:
                break
            timer = due[0]
            self.timers.remove(timer)
            self.now = max(self.now, timer.when)
            timer.callback(*timer.args)
        self.now = until


class _Timer:
    def __init__(self, when: float, callback: Callable[..., None], args: tuple[Any, ...]) -> None:
        self.when, self.callback, self.args, self.cancelled = when, callback, args, False

    def cancel(self) -> None:
        self.cancelled = True


class MemoryTransport:
    """What a protocol writes, and how it closed."""

    def __init__(self, protocol: Any = None) -> None:
        self.protocol = protocol
        self.written = bytearray()
        self.closed = False
        self.aborted = False
        self.reading = True
        self.dropped = 0

    def write(self, data: bytes) -> None:
        if self.closed:  # as asyncio's transports: dropped
            self.dropped += len(data)
            return
        self.written += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = self.aborted = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default


class ProxyHarness:
    """One client connection proxied to one pre-opened upstream connection."""

    def __init__(self, config: str = _CONFIG) -> None:
        self.loop = VirtualLoop()
        pools = PoolRegistry(self.loop)  # type: ignore[arg-type]
        snapshot = compile_snapshot(_config(config), pools)
        self.state = WorkerState(self.loop, snapshot, pools)  # type: ignore[arg-type]
        self.state.new_request_id = lambda: b"0123456789abcdef"  # type: ignore[method-assign]  # repeatable
        self.pool = next(iter(pools.pools.values()))
        self.upstream = UpstreamConnection(self.pool)
        self.upstream_transport = MemoryTransport(self.upstream)
        self.upstream.connection_made(self.upstream_transport)  # type: ignore[arg-type]
        self.pool.release(self.upstream)
        self.client = DownstreamProtocol(self.state)
        self.client_transport = MemoryTransport(self.client)
        self.client.connection_made(self.client_transport)  # type: ignore[arg-type]

    # -- driving -------------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        """Client bytes, as one read."""
        if not self.client_transport.closed:
            self.client.data_received(data)

    def respond(self, data: bytes, pieces: list[int] | None = None) -> None:
        """Upstream bytes, as reads of the given sizes (one read when None)."""
        at = 0
        for size in pieces or [len(data)]:
            piece = data[at:at + size]
            at += size
            if piece:
                self._upstream_read(piece)
        if at < len(data):
            self._upstream_read(data[at:])

    def _upstream_read(self, piece: bytes) -> None:
        if self.upstream_transport.closed:
            return  # the proxy closed it: the kernel would drop what arrives
        self.upstream.data_received(piece)

    def upstream_closes(self) -> None:
        if not self.upstream_transport.closed:
            self.upstream_transport.closed = True
            self.upstream.connection_lost(None)

    # -- what happened -------------------------------------------------------------------------
    @property
    def sent_upstream(self) -> bytes:
        return bytes(self.upstream_transport.written)

    @property
    def to_client(self) -> bytes:
        """What the client received, the Date line of the (one) response head removed: its value
        depends on the clock."""
        head, blank, rest = bytes(self.client_transport.written).partition(b"\r\n\r\n")
        return _DATE.sub(b"", head, count=1) + blank + rest

    @property
    def tunnelled(self) -> bool:
        return self.client.tunnel is not None

    @property
    def upstream_pooled(self) -> bool:
        return self.upstream in self.pool.idle and not self.upstream_transport.closed

    def outcome(self) -> tuple[bytes, bool, bool, bool]:
        """Everything a split must not change: client bytes, client closed, tunnel, upstream reusable."""
        return self.to_client, self.client_transport.closed, self.tunnelled, self.upstream_pooled
