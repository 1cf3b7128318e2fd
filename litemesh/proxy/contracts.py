"""The contracts between the transport, the proxy core and the upstream side.

Data flows one way: server → proxy core → filters.  The core never imports the server: an exchange
talks to its client connection through :class:`Downstream`, which the server's protocol implements,
and an upstream connection reports to the exchange it serves through :class:`ResponseHandler`, which
the exchange implements.  Compiled (contracts.pxd), both are cdef classes: their fields are C fields
and their methods C calls through a vtable, so crossing a module boundary costs no dictionary lookup.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..http.request import RequestHandler
from .deadline import TimerWheel

if TYPE_CHECKING:
    from ..errors import GatewayError
    from .snapshot import Snapshot


class ProxyState:
    """What the proxy core reads of its worker: the loop, the live snapshot (swapping it is how a
    reload takes effect), the worker's shared-memory metrics slot (None in a single process), request
    ids and the count of requests answered.  The server's ``WorkerState`` extends it."""

    __slots__ = ("loop", "clock", "wheel", "snapshot", "metrics", "new_request_id", "requests")

    def __init__(self, loop: Any, snapshot: "Snapshot", metrics: Any, new_request_id: Any) -> None:
        self.loop = loop
        # loop.time, bound once for every connection of the worker: calling it costs a third of
        # looking the method up on the loop each time, and no connection holds a bound method of its own
        self.clock = loop.time
        self.wheel = TimerWheel(loop, self.clock)  # the client connections' deadlines
        self.snapshot = snapshot
        self.metrics = metrics
        self.new_request_id = new_request_id  # () -> bytes
        self.requests = 0


class Downstream(RequestHandler):
    """A client connection as the proxy core sees it (and the handler of its request reader's events)."""

    __slots__ = ("state", "loop", "transport", "snapshot", "client_ip", "scheme", "closing", "writing_paused",
                 "identity_fields")

    def __init__(self) -> None:
        self.state: ProxyState = None  # type: ignore[assignment]  # the worker's
        self.loop: Any = None
        self.transport: Any = None
        self.snapshot: Any = None  # the config snapshot new requests on this connection use
        self.client_ip = b"unknown"
        self.scheme = b"http"
        self.closing = False
        self.writing_paused = False
        # the X-Forwarded-For/-Proto and X-Real-IP lines an untrusted client's requests get: they
        # depend on the connection alone, so they are made once (by the exchange) per connection
        self.identity_fields: bytes | None = None

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def exchange_done(self, exchange: "ResponseHandler") -> None:
        """``exchange`` wrote its whole response."""
        raise NotImplementedError

    def abort_exchange(self, exchange: "ResponseHandler") -> None:
        """A response broke off midway: the connection must close."""
        raise NotImplementedError

    def start_tunnel(self, exchange: "ResponseHandler", upstream: Any, upstream_rest: bytes) -> None:
        """The upstream switched protocols: from now on bytes flow unparsed both ways."""
        raise NotImplementedError

    def pause_reading_for_buffer(self) -> None:
        raise NotImplementedError

    def resume_reading_for_buffer(self) -> None:
        raise NotImplementedError

    def pause_reading_for_upstream(self) -> None:
        raise NotImplementedError

    def resume_reading_for_upstream(self) -> None:
        raise NotImplementedError


class ResponseHandler:
    """What an upstream connection serves: the exchange whose response it reads."""

    __slots__ = ("conn", "status", "request_done", "close_delimited_upstream")

    def __init__(self, conn: Downstream) -> None:
        self.conn = conn
        self.status = 0  # the response status, once known
        self.request_done = False  # the whole request (body included) was sent on
        self.close_delimited_upstream = False  # the response body ends when the upstream closes

    def on_response_head(self, status: int, head: bytes, upstream_keep: bool) -> None:
        """``head``: the response head's bytes as they came, status line to blank line."""
        raise NotImplementedError

    def on_response_body(self, data: bytes) -> None:
        raise NotImplementedError

    def on_response_end(self) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        """Write what the last read produced."""
        raise NotImplementedError

    def on_upstream_error(self, error: "GatewayError") -> None:
        raise NotImplementedError

    def on_upstream_lost(self, upstream: Any, exc: Exception | None) -> None:
        raise NotImplementedError

    def on_upstream_upgraded(self, upstream: Any, rest: bytes) -> None:
        raise NotImplementedError
