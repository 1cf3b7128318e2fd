"""The upstream side of one pooled HTTP/1.1 connection: response parsing and its events.

One :class:`UpstreamConnection` serves one exchange at a time (``bind``), then goes back to its pool.
httptools callbacks only collect state; decisions that end a response (release to the pool, close,
hand over to the next exchange) run after ``feed_data`` returns, so a response to ``HEAD`` (whose
Content-Length announces a body that never comes) can be ended by swapping in a fresh parser, and
bytes after a complete response mark the connection broken instead of leaking into the next one.
Whatever those bytes are (another response, a 101, garbage), the complete response ends normally
and the connection is closed: the outcome never depends on where a read boundary fell.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import httptools

from ..errors import UpstreamError
from ..http.request import blank_line
from .deadline import Deadline
from .contracts import Downstream, ResponseHandler

if TYPE_CHECKING:
    from .pool import UpstreamPool

_BAD_RESPONSE = "invalid response from upstream"
#: the longest response head taken from an upstream (nginx's proxy_buffer_size is 4-8 KiB)
MAX_RESPONSE_HEAD = 64 * 1024


class UpstreamConnection:
    """An asyncio protocol (duck-typed: compiled, it is a cdef class, which cannot derive from
    ``asyncio.Protocol``)."""

    __slots__ = (
        "pool", "transport", "parser", "exchange", "requests", "idle_since", "got_response", "tunnel",
        "_raw_head", "_head_parts", "_head_have", "_interim", "_head_seen", "_head_only", "_complete", "_keep",
        "_broken", "_deadline", "_read_timeout", "_write_timeout", "_writing_paused", "_lost", "_tail",
    )

    def __init__(self, pool: "UpstreamPool") -> None:
        self.pool = pool
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: ResponseHandler | None = None
        self.requests = 0
        self.idle_since = 0.0
        self.got_response = False  # any byte of the current response arrived
        self.tunnel: Downstream | None = None  # set once a 101 turned this into a byte tunnel
        self._raw_head = b""  # the bytes of the last head read, from its status line to its blank line
        self._head_parts: list[bytes] = []  # the reads of a head still arriving ...
        self._head_have = 0  # ... and their length
        self._interim = False
        self._head_seen = False
        self._head_only = False
        self._complete = False
        self._keep = False
        self._broken = False
        self._deadline = Deadline(pool.wheel, self._on_timeout)
        self._read_timeout = 60.0
        self._write_timeout = 60.0
        self._writing_paused = False
        self._lost = False
        self._tail = b""  # the last bytes of an unfinished head (see _head_end)

    # -- used by the exchange ----------------------------------------------------------------
    def bind(self, exchange: ResponseHandler, head_only: bool, read_timeout: float, write_timeout: float) -> None:
        self.exchange = exchange
        self.requests += 1
        self.got_response = False
        self._head_seen = False
        self._complete = False
        self._head_only = head_only
        self._tail = b""
        self._head_parts = []
        self._head_have = 0
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._deadline.set(read_timeout)

    def send(self, data: bytes) -> None:
        self.transport.write(data)

    def close(self) -> None:
        self.exchange = None
        self._deadline.cancel()
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.exchange = None
        self._deadline.cancel()
        if self.transport is not None:
            self.transport.abort()

    # -- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def eof_received(self) -> None:
        return None  # the upstream half-closed: close our side too (connection_lost follows)

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.transport.write(data)
            return
        exchange = self.exchange
        if exchange is None:  # bytes on an idle connection: the stream is out of sync ...
            if not data.strip(b"\r\n"):
                return  # ... unless they are empty lines, which a parser skips before a response
            self.pool.discard(self)
            self.close()
            return
        self.got_response = True
        self._deadline.set(self._read_timeout)
        while True:
            rest = b""
            if not self._head_seen:
                # A head goes to llhttp alone, and its bytes to the exchange as they are (no callback
                # per field): the read is cut at its blank line, and what follows is fed on its own.
                # (So a response to HEAD, whose end llhttp cannot see, ends with its head too.)
                cut = self._head_end(data)
                if cut < 0:
                    self._head_have += len(data)
                    if self._head_have > MAX_RESPONSE_HEAD:
                        self._fail(UpstreamError(502, "upstream_bad_response", "response head from upstream too large"))
                        return
                    self._head_parts.append(data)
                else:
                    size = len(data)
                    if cut < size:
                        buf = data  # compiled: the slices are copied straight from a C pointer
                        data, rest = buf[:cut], buf[cut:size]
                    parts = self._head_parts
                    if parts:
                        parts.append(data)
                        self._raw_head = b"".join(parts)
                        self._head_parts = []
                    else:
                        self._raw_head = data
                    self._head_have = 0
                    if len(self._raw_head) > MAX_RESPONSE_HEAD:
                        self._fail(UpstreamError(502, "upstream_bad_response", "response head from upstream too large"))
                        return
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserUpgrade:
                self._switch_protocols(rest)  # (llhttp stops right after a 101's head: the rest is the new protocol)
                return
            except httptools.HttpParserError as exc:  # includes errors raised inside our callbacks
                if self._complete:  # garbage after a complete response: end it as if split there
                    self._broken = True
                    self._finish()
                    return
                cause = exc.__context__
                self._fail(cause if isinstance(cause, UpstreamError)
                           else UpstreamError(502, "upstream_bad_response", _BAD_RESPONSE))
                return
            if self._complete:
                if rest.strip(b"\r\n"):  # bytes after a complete response (empty lines are skipped, in any split)
                    self._broken = True
                self._finish()
                return
            if not rest:
                break
            data = rest  # the body after the head; or, after an interim response or empty lines, a head
        exchange = self.exchange
        if exchange is not None:
            exchange.flush()

    def _head_end(self, data: bytes) -> int:
        """Where the head being read ends in ``data`` (just after its blank line), or -1."""
        tail = self._tail
        if tail:  # the blank line may straddle the reads
            found = (tail + data[:3]).find(b"\r\n\r\n")
            if found >= 0:
                self._tail = b""
                return found + 4 - len(tail)
        found = blank_line(data)
        if found >= 0:
            self._tail = b""
            return found + 4
        self._tail = (tail + data)[-3:]
        return -1

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._deadline.cancel()
        exchange = self.exchange
        if self.tunnel is not None:
            tunnel, self.tunnel = self.tunnel, None
            tunnel.transport.close()
            return
        if exchange is None:
            self.pool.discard(self)
            return
        self.exchange = None
        if self._head_seen and not self._complete and exchange.close_delimited_upstream:
            exchange.on_response_end()  # a body delimited by the connection's close ends here
            return
        exchange.on_upstream_lost(self, exc)

    def pause_writing(self) -> None:  # the upstream is slower than the client's request body
        self._writing_paused = True
        if self.exchange is not None:
            self.exchange.conn.pause_reading_for_upstream()
            self._deadline.set(self._write_timeout)
        elif self.tunnel is not None:
            self.tunnel.pause_reading_for_upstream()

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self.exchange is not None:
            self.exchange.conn.resume_reading_for_upstream()
            self._deadline.set(self._read_timeout)
        elif self.tunnel is not None:
            self.tunnel.resume_reading_for_upstream()

    # -- httptools callbacks -----------------------------------------------------------------
    # (no on_status / on_header: the exchange reads the fields off the head's bytes, and httptools
    # makes no objects for fields it has no callback for)
    def on_message_begin(self) -> None:
        if self._complete:  # bytes after a complete response: this connection is out of sync
            self._broken = True
        self._interim = False

    def on_headers_complete(self) -> None:
        exchange = self.exchange
        if exchange is None or self._complete:
            self._broken = True
            return
        status = self.parser.get_status_code()
        if not 100 <= status <= 599:  # RFC 9110 §15: nothing else is a status code
            raise UpstreamError(502, "upstream_bad_response", "invalid response status from upstream")
        if status < 200 and status != 101:
            self._interim = True  # 1xx: we answered Expect ourselves; interim responses are dropped
            return
        self._head_seen = True
        self._keep = self.parser.should_keep_alive()
        exchange.on_response_head(status, self._raw_head, self._keep)
        if self._head_only and status != 101:
            self._complete = True  # a HEAD response ends with its head, whatever Content-Length says

    def on_body(self, body: bytes) -> None:
        exchange = self.exchange
        if exchange is None or self._complete:
            self._broken = True
            return
        if self._interim or not self._head_seen:  # a 1xx has no body: never pass bytes without a head
            raise UpstreamError(502, "upstream_bad_response", "upstream sent a body with an interim response")
        exchange.on_response_body(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        if self._complete:
            return
        self._complete = True
        self._keep = self.parser.should_keep_alive()

    # -- endings ---------------------------------------------------------------------------
    def _finish(self) -> None:
        """The response is complete: hand the connection back (or close it), then end the exchange."""
        exchange = self.exchange
        self.exchange = None
        self._deadline.clear()
        if self._head_only:
            self.parser = httptools.HttpResponseParser(self)
        reusable = self._keep and not self._broken and exchange is not None and exchange.request_done
        if reusable:
            self.pool.release(self)
        else:
            self.close()
        if exchange is not None:
            exchange.on_response_end()

    def _fail(self, error: UpstreamError) -> None:
        exchange = self.exchange
        self.close()
        if exchange is not None:
            exchange.on_upstream_error(error)

    def _switch_protocols(self, rest: bytes) -> None:
        exchange = self.exchange
        if exchange is None or not self._head_seen or exchange.status != 101:
            # a 101 the exchange never accepted (it came after a complete response): the stream is
            # out of sync; end what was complete, and never let this connection become a tunnel
            self._broken = True
            if exchange is not None and self._complete:
                self._finish()
            else:
                self._fail(UpstreamError(502, "upstream_bad_response", _BAD_RESPONSE))
            return
        self.exchange = None
        self._deadline.cancel()
        exchange.on_upstream_upgraded(self, rest)

    def _on_timeout(self) -> None:
        exchange = self.exchange
        if exchange is None:
            return
        self.abort()
        exchange.on_upstream_error(UpstreamError(504, "upstream_timeout", "upstream timed out"))

