"""One client connection: feeds the request reader, keeps exchanges in order, moves bytes.

Theory of operation.  Requests on a connection are answered strictly in order (HTTP/1.1
pipelining).  The exchange at the head of the line (``current``) runs; requests parsed behind it
wait in ``queue`` with their bodies buffered up to a bound, after which reading pauses.  Reading is
paused for independent reasons kept in a bit mask (upstream cannot take more body, too much
buffered, a protocol switch in progress), and resumes only when no reason is left.  Writing
back-pressure is forwarded to whichever upstream feeds this connection.  One lazily re-armed
deadline covers every client-side timeout; what it means when it fires is read off the state.
A protocol error closes the connection after the answers already owed; nothing raised while
handling one connection escapes to the loop or affects another.
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ..errors import ClientError, GatewayError, internal_error
from ..http.request import RequestHead, RequestReader
from ..proxy.contracts import Downstream
from ..proxy.exchange import Exchange, new_exchange
from ..proxy.deadline import Deadline

if TYPE_CHECKING:
    from ..proxy.upstream import UpstreamConnection
    from .state import WorkerState

log = logging.getLogger("litemesh.server")

_PAUSE_UPSTREAM = 1  # the upstream's write buffer is full (request body back-pressure)
_PAUSE_BUFFER = 2  # too much request body buffered, or too many pipelined requests waiting
_PAUSE_UPGRADE = 4  # a protocol switch is pending: the bytes after the head belong to the tunnel
_MAX_QUEUED = 16  # pipelined requests parsed ahead of the one being answered

_TIMEOUT = ClientError(408, "request_timeout", "client timed out sending the request")


class DownstreamProtocol(Downstream):
    """An asyncio protocol (duck-typed: compiled, it is a cdef class, which cannot derive from
    ``asyncio.Protocol``)."""

    __slots__ = (
        "reader", "current", "queue", "receiving", "tunnel", "_pause_mask", "_deadline", "_reader_failed",
        "_in_head_timer",
    )

    def __init__(self, state: "WorkerState") -> None:
        self.state = state
        self.loop = state.loop
        self.snapshot = state.snapshot
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.reader = RequestReader(self, self.snapshot.reader_limits, self.snapshot.request_id_header)
        self.client_ip = b"unknown"
        self.scheme = b"http"
        self.current: Exchange | None = None
        # (a list, not a deque: at most _MAX_QUEUED entries, and an empty list is 56 bytes where an
        # empty deque is 760, on every idle connection)
        self.queue: list[Exchange] = []
        self.receiving: Exchange | None = None
        self.closing = False
        self.writing_paused = False
        self.identity_fields = None
        self.tunnel: UpstreamConnection | None = None
        self._pause_mask = 0
        self._deadline = Deadline(state.wheel, self._on_timeout)
        self._reader_failed = False
        self._in_head_timer = False

    # -- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if peer:
            self.client_ip = str(peer[0]).encode("ascii")
        self.state.connections.add(self)
        if self.state.metrics is not None:
            self.state.metrics.connection_opened()
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.transport.write(data)
            return
        if self._reader_failed:
            return
        if self._pause_mask & _PAUSE_UPGRADE:
            exchange = self.receiving or self.current
            if exchange is not None and exchange.upgrade_rest is not None:
                exchange.upgrade_rest += data
            return
        try:
            self.reader.feed(data)
        except GatewayError as error:
            self._fail_reading(error)
            return
        except Exception:  # a bug of ours: answer 500 for this connection only
            log.exception("error while handling a request")
            self._fail_reading(internal_error())
            return
        if self.reader.in_head and not self._in_head_timer:
            self._arm_head_timer()

    def eof_received(self) -> bool | None:
        # The client half-closed.  Requests already received are still answered; then we close.
        receiving = self.receiving
        if receiving is not None:
            self._abandon(receiving)
        if self.current is None and not self.queue:
            return False
        self.closing = True
        return True

    def _abandon(self, exchange: Exchange) -> None:
        """The client closed while sending ``exchange``'s body: it can never complete.  Abort it and
        its upstream connection now (499) instead of waiting for the body timeout."""
        self.receiving = None
        if exchange is self.current:
            self.current = None
            exchange.abort()
            self._close()
        elif exchange in self.queue:  # pipelined behind a request still being answered
            self.queue.remove(exchange)
            exchange.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self._deadline.cancel()
        self.reader.close()
        self.state.connections.discard(self)
        if self.state.metrics is not None:
            self.state.metrics.connection_closed()
        if self.tunnel is not None:
            tunnel, self.tunnel = self.tunnel, None
            tunnel.tunnel = None
            tunnel.close()
        current, self.current = self.current, None
        if current is not None:
            current.abort()
        for exchange in self.queue:
            exchange.abort()
        self.queue.clear()
        self.state.connection_closed()

    def pause_writing(self) -> None:
        self.writing_paused = True
        feeder = self.tunnel if self.tunnel is not None else (self.current.upstream if self.current else None)
        if feeder is not None:
            feeder.transport.pause_reading()
        self._deadline.set(self.snapshot.send_timeout)

    def resume_writing(self) -> None:
        self.writing_paused = False
        feeder = self.tunnel if self.tunnel is not None else (self.current.upstream if self.current else None)
        if feeder is not None:
            feeder.transport.resume_reading()
        self._deadline.clear()
        if self.current is None and not self.queue:
            self._arm_keepalive()

    # -- request events (from the reader) ------------------------------------------------------
    def on_request_head(self, head: RequestHead) -> None:
        self._in_head_timer = False
        # a reload takes effect between requests, also on connections opened before it
        self.snapshot = self.state.snapshot
        exchange = new_exchange(self, head, self.snapshot)
        self.receiving = exchange
        if head.has_body:
            self._deadline.set(self.snapshot.client_body_timeout)
        else:
            self._deadline.clear()
        if self.current is None:
            self.current = exchange
            exchange.start()
        else:
            self.queue.append(exchange)
            if len(self.queue) >= _MAX_QUEUED:
                self.pause_reading_for_buffer()

    def on_request_body(self, data: bytes) -> None:
        self._deadline.set(self.snapshot.client_body_timeout)
        receiving = self.receiving  # (owned for the call, as above)
        receiving.on_body(data)

    def on_request_end(self) -> None:
        exchange, self.receiving = self.receiving, None
        if self.current is not None or self.queue:
            self._deadline.clear()
        elif not self.writing_paused:
            self._arm_keepalive()  # answered before its end was read (a local reply): idle from now on
        exchange.on_end()

    def on_request_upgrade(self, rest: bytes) -> None:
        # The reader stopped after the head of a request that asks to switch protocols (the last
        # one parsed): until its exchange tunnels, or answers without switching and closes, the
        # bytes after that head are not HTTP and wait here.
        exchange = self.queue[-1] if self.queue else self.current
        if exchange is not None and not exchange.done:
            exchange.upgrade_rest = rest
        self._pause(_PAUSE_UPGRADE)

    # -- used by exchanges --------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(data)

    def exchange_done(self, exchange: Exchange) -> None:
        """``exchange`` wrote its whole response: start the next one, idle, or close."""
        if exchange is not self.current:
            return
        self.current = None
        self.state.requests += 1
        if not exchange.keep_alive or self.closing:
            self._close()
            return
        if self.queue:
            # (a local reference: compiled, a method call on an attribute does not own its object,
            # and the exchange may end, and be dropped from self.current, before start returns)
            current = self.current = self.queue.pop(0)
            if self._pause_mask & _PAUSE_BUFFER and len(self.queue) < _MAX_QUEUED // 2:
                self.resume_reading_for_buffer()
            current.start()
        elif self.receiving is None:
            self._arm_keepalive()

    def abort_exchange(self, exchange: Exchange) -> None:
        """A response broke off midway: closing is the only way to tell the client."""
        self.current = None
        self._close()

    def start_tunnel(self, exchange: Exchange, upstream: "UpstreamConnection", upstream_rest: bytes) -> None:
        self.current = None
        self.receiving = None
        self.tunnel = upstream
        upstream.tunnel = self
        self._deadline.cancel()
        if upstream_rest:
            self.write(upstream_rest)
        if exchange.upgrade_rest:
            upstream.send(exchange.upgrade_rest)
        exchange.upgrade_rest = None
        if self.writing_paused:
            upstream.transport.pause_reading()
        self._resume(_PAUSE_UPGRADE)

    def pause_reading_for_upstream(self) -> None:
        self._pause(_PAUSE_UPSTREAM)

    def resume_reading_for_upstream(self) -> None:
        self._resume(_PAUSE_UPSTREAM)

    def pause_reading_for_buffer(self) -> None:
        self._pause(_PAUSE_BUFFER)

    def resume_reading_for_buffer(self) -> None:
        if len(self.queue) < _MAX_QUEUED:
            self._resume(_PAUSE_BUFFER)

    def shutdown(self) -> None:
        """Graceful drain: idle connections close now, busy ones after their current response."""
        self.closing = True
        if self.current is None and not self.queue and self.tunnel is None:
            self._close()

    # -- internals ---------------------------------------------------------------------------
    def _pause(self, reason: int) -> None:
        if not self._pause_mask and not self.transport.is_closing():
            self.transport.pause_reading()
        self._pause_mask |= reason

    def _resume(self, reason: int) -> None:
        if not self._pause_mask & reason:
            return
        self._pause_mask &= ~reason
        if not self._pause_mask and not self.transport.is_closing():
            self.transport.resume_reading()

    def _close(self) -> None:
        self.closing = True
        self._deadline.cancel()
        self.transport.close()

    def _fail_reading(self, error: GatewayError) -> None:
        """The byte stream is unusable: answer the requests already owed, then ``error``, then close."""
        self._reader_failed = True
        self._pause(_PAUSE_BUFFER)
        receiving = self.receiving
        if receiving is not None and receiving is self.current and not receiving.response_started:
            receiving.keep_alive = False
            receiving.on_upstream_error(error)  # aborts its upstream and answers with this error
            return
        if receiving is not None and receiving is self.current:
            self.abort_exchange(receiving)
            return
        if receiving is not None:  # a queued request whose body broke: it answers the error when its turn comes
            receiving.local_error = error
            receiving.keep_alive = False
            return
        failed = new_exchange(self, None, self.snapshot)
        failed.local_error = error
        if self.current is None:
            self.current = failed
            failed.start()
        else:
            self.queue.append(failed)

    def _arm_head_timer(self) -> None:
        self._in_head_timer = True
        self._deadline.set(self.snapshot.client_header_timeout)

    def _arm_keepalive(self) -> None:
        self._in_head_timer = False
        self._deadline.set(self.snapshot.keepalive_timeout)

    def _on_timeout(self) -> None:
        if self.writing_paused:  # the client stopped reading our response
            self.transport.abort()
            return
        if self.reader.in_head:
            self._timeout_answer()
            return
        receiving = self.receiving
        if receiving is not None:  # stalled request body
            if receiving is self.current and not receiving.response_started:
                self._fail_reading(_TIMEOUT)
            else:
                self.transport.abort()
            return
        if self.current is None and not self.queue:
            self._close()  # idle keep-alive connection

    def _timeout_answer(self) -> None:
        if self.current is None:
            self._fail_reading(_TIMEOUT)
        else:
            self._close()
