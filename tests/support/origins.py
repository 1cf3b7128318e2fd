"""Real upstream ("origin") servers for functional tests of the proxy.

Each server listens on 127.0.0.1:<ephemeral> and runs a private asyncio loop in
a daemon thread, so plain synchronous pytest tests can use them:

    with HttpOrigin() as origin:
        ...  # point the gateway at origin.address

Deliberately independent of ``litemesh``: these are the "other side" the proxy
is tested against, so they must not share its bugs.
"""
from __future__ import annotations

import asyncio
import atexit
import base64
import functools
import hashlib
import json
import socket
import struct
import threading
import time
from typing import Any, Callable, Self
from urllib.parse import parse_qsl

import httptools

__all__ = [
    "HttpOrigin",
    "RawResponseOrigin",
    "GarbageOrigin",
    "BadFramingOrigin",
    "HalfResponseOrigin",
    "ResetOrigin",
    "HangOrigin",
    "RecordingOrigin",
    "pattern_bytes",
    "pattern_slice",
    "sha256_of_pattern",
    "free_port",
    "closed_port",
    "WS_GUID",
]

HOST = "127.0.0.1"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_READ_SIZE = 64 * 1024
_WRITE_PIECE = 64 * 1024
_MAX_RECORDED = 1000

# --------------------------------------------------------------------------- #
# Deterministic body pattern
# --------------------------------------------------------------------------- #

# A prime period makes misplaced/duplicated/dropped slices visible: they will
# almost never line up with chunk or buffer sizes (which are powers of two).
_PERIOD = 251
_BLOCK = bytes(range(_PERIOD))
_BIG_BLOCK = _BLOCK * (_WRITE_PIECE // _PERIOD + 2)


def pattern_slice(offset: int, length: int) -> bytes:
    """Bytes [offset, offset+length) of the infinite pattern."""
    start = offset % _PERIOD
    if start + length <= len(_BIG_BLOCK):
        return _BIG_BLOCK[start:start + length]
    reps = (start + length) // _PERIOD + 1
    return (_BLOCK * reps)[start:start + length]


def pattern_bytes(n: int) -> bytes:
    """The first ``n`` bytes of the deterministic pattern served by /bytes/N."""
    return pattern_slice(0, n)


def iter_pattern(n: int, piece: int = _WRITE_PIECE):
    """Yield the pattern in pieces so multi-GB bodies never sit in memory."""
    offset = 0
    while offset < n:
        size = min(piece, n - offset)
        yield pattern_slice(offset, size)
        offset += size


@functools.lru_cache(maxsize=64)
def sha256_of_pattern(n: int) -> str:
    """Hex sha256 of ``pattern_bytes(n)``, computed incrementally."""
    h = hashlib.sha256()
    for piece in iter_pattern(n):
        h.update(piece)
    return h.hexdigest()


# --------------------------------------------------------------------------- #
# Ports
# --------------------------------------------------------------------------- #

# Sockets bound but never listening: a SYN to them is answered with RST
# (ECONNREFUSED) and, because we keep them bound, nobody else can grab the port.
_reserved_closed: list[socket.socket] = []
atexit.register(lambda: [s.close() for s in _reserved_closed])


def free_port() -> int:
    """A port that was free a moment ago (for the gateway's own listener)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def closed_port() -> int:
    """A port on 127.0.0.1 where connecting is refused, reserved for the process."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((HOST, 0))
    _reserved_closed.append(s)
    return s.getsockname()[1]


# --------------------------------------------------------------------------- #
# Threaded server base
# --------------------------------------------------------------------------- #


class _ThreadedServer:
    """Runs an asyncio TCP server on a private loop in a daemon thread."""

    def __init__(self) -> None:
        self.port: int = 0
        self.connections_accepted = 0
        self.requests_served = 0
        self.open_connections = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task] = set()
        self._next_conn_id = 0
        self._stopping = False

    # -- public API ---------------------------------------------------------

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def start(self) -> Self:
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []
        self._stopping = False
        self._thread = threading.Thread(
            target=self._thread_main, args=(ready, failure),
            name=f"{type(self).__name__}-loop", daemon=True)
        self._thread.start()
        if not ready.wait(5):
            raise RuntimeError(f"{type(self).__name__} did not start")
        if failure:
            self._thread.join(2)
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        """Close the listener and every connection; join the thread (<= 2 s)."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        deadline = time.monotonic() + 2.0
        if not loop.is_closed():
            fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            try:
                fut.result(timeout=1.5)
            except Exception:  # noqa: BLE001 - best effort, the join below bounds us
                pass
            try:
                loop.call_soon_threadsafe(loop.stop)
            except RuntimeError:  # loop already closed
                pass
        thread.join(max(0.0, deadline - time.monotonic()))
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- loop thread --------------------------------------------------------

    def _thread_main(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._accept, HOST, 0, limit=_READ_SIZE))
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as exc:  # surface bind errors in start()
            failure.append(exc)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            self._cancel_leftovers(loop)
            loop.close()

    @staticmethod
    def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))

    async def _shutdown(self) -> None:
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1.0)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self._next_conn_id += 1
        self.connections_accepted += 1
        self.open_connections += 1
        try:
            await self._handle(reader, writer, self._next_conn_id)
        except (ConnectionError, asyncio.CancelledError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open_connections -= 1
            self._writers.discard(writer)
            self._tasks.discard(task)
            if not writer.transport.is_closing():
                writer.transport.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      conn_id: int) -> None:
        raise NotImplementedError


def _abort_with_rst(writer: asyncio.StreamWriter) -> None:
    """Close so the peer sees RST instead of FIN (SO_LINGER with zero timeout)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


async def _discard_until_eof(reader: asyncio.StreamReader) -> None:
    while await reader.read(_READ_SIZE):
        pass


# --------------------------------------------------------------------------- #
# Misbehaving origins
# --------------------------------------------------------------------------- #


class RawResponseOrigin(_ThreadedServer):
    """Reads a request head, writes ``payload`` verbatim, then closes (FIN).

    ``read_timeout`` bounds the wait for the head so a silent client still gets
    the payload; ``close=False`` keeps the connection open after the payload.
    """

    DEFAULT_PAYLOAD = b"\x00\x01 this is not HTTP at all \xff\xfe\r\n\r\n"

    def __init__(self, payload: bytes | None = None, *, close: bool = True,
                 read_timeout: float = 2.0) -> None:
        super().__init__()
        self.payload = self.DEFAULT_PAYLOAD if payload is None else payload
        self.close_after = close
        self.read_timeout = read_timeout

    async def _handle(self, reader, writer, conn_id):
        await _read_head(reader, self.read_timeout)
        self.requests_served += 1
        writer.write(self.payload)
        await writer.drain()
        if self.close_after:
            writer.close()
            return
        await _discard_until_eof(reader)


async def _read_head(reader: asyncio.StreamReader, timeout: float) -> bytes:
    """Read until the blank line ending a request head, EOF or timeout."""
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in buf:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            data = await asyncio.wait_for(reader.read(_READ_SIZE), remaining)
        except asyncio.TimeoutError:
            break
        if not data:
            break
        buf += data
    return buf


class GarbageOrigin(RawResponseOrigin):
    """Answers any request with non-HTTP junk (or ``payload``) and closes."""


class BadFramingOrigin(RawResponseOrigin):
    """Answers with a response carrying both Content-Length and Transfer-Encoding."""

    DEFAULT_PAYLOAD = (
        b"HTTP/1.1 200 OK\r\n"
        b"Content-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n"
        b"\r\n"
        b"5\r\nhello\r\n0\r\n\r\n"
    )


class HalfResponseOrigin(RawResponseOrigin):
    """Promises Content-Length 1000, sends 10 body bytes, then closes."""

    DEFAULT_PAYLOAD = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: text/plain\r\n\r\n"
        + b"0123456789"
    )


class ResetOrigin(_ThreadedServer):
    """Accepts, reads a little (up to ``read_timeout``), then aborts with RST."""

    def __init__(self, *, read_timeout: float = 1.0) -> None:
        super().__init__()
        self.read_timeout = read_timeout

    async def _handle(self, reader, writer, conn_id):
        try:
            await asyncio.wait_for(reader.read(1024), self.read_timeout)
        except asyncio.TimeoutError:
            pass
        self.requests_served += 1
        _abort_with_rst(writer)


class RecordingOrigin(_ThreadedServer):
    """Records every byte each connection sends and when the connection ended (FIN or RST).

    With a ``payload``, each request head seen (each blank line ending one) is answered with it
    (bodies are not parsed: send bodyless requests, or expect one answer per head).  ``received``
    maps connection ids (1, 2, ... in accept order) to the bytes so far; ``ended`` to the
    ``time.monotonic()`` at which the connection was seen closing.
    """

    def __init__(self, payload: bytes | None = None) -> None:
        super().__init__()
        self.payload = payload
        self.received: dict[int, bytearray] = {}
        self.ended: dict[int, float] = {}

    async def _handle(self, reader, writer, conn_id):
        buf = self.received.setdefault(conn_id, bytearray())
        answered = 0
        try:
            while True:
                data = await reader.read(_READ_SIZE)
                if not data:
                    break
                buf += data
                if self.payload is not None:
                    heads = buf.count(b"\r\n\r\n")
                    while answered < heads:
                        writer.write(self.payload)
                        answered += 1
        finally:
            self.ended[conn_id] = time.monotonic()

    def all_received(self) -> bytes:
        return b"".join(bytes(self.received[c]) for c in sorted(self.received))

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Poll ``predicate`` until it returns something truthy (bounded wait); returns that."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value or time.monotonic() >= deadline:
                return value
            time.sleep(0.01)


class HangOrigin(_ThreadedServer):
    """Accepts and reads forever; never writes a byte."""

    async def _handle(self, reader, writer, conn_id):
        await _discard_until_eof(reader)


# --------------------------------------------------------------------------- #
# HttpOrigin: a real keep-alive HTTP/1.1 server
# --------------------------------------------------------------------------- #

_REASONS = {
    100: "Continue", 101: "Switching Protocols", 200: "OK", 201: "Created",
    202: "Accepted", 204: "No Content", 206: "Partial Content",
    301: "Moved Permanently", 302: "Found", 304: "Not Modified",
    307: "Temporary Redirect", 308: "Permanent Redirect", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 408: "Request Timeout", 413: "Content Too Large",
    418: "I'm a teapot", 426: "Upgrade Required", 429: "Too Many Requests",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout",
}

Headers = list[tuple[str, str]]


class _Request:
    """One parsed request; the body is hashed as it streams in, never stored."""

    def __init__(self, conn_id: int, request_no: int) -> None:
        self.conn_id = conn_id
        self.request_no = request_no
        self.method = ""
        self.target = ""
        self.http_version = ""
        self.keep_alive = True
        self.headers: Headers = []
        self.body_len = 0
        self._sha = hashlib.sha256()
        self.record: dict[str, Any] = {}

    @property
    def path(self) -> str:
        path = self.target.split("?", 1)[0]
        if "://" in path:  # absolute-form: route on the path part only
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        return path

    @property
    def query(self) -> list[tuple[str, str]]:
        _, _, qs = self.target.partition("?")
        return parse_qsl(qs, keep_blank_values=True)

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return None

    def feed_body(self, data: bytes) -> None:
        self.body_len += len(data)
        self._sha.update(data)

    @property
    def body_sha256(self) -> str:
        return self._sha.hexdigest()


class _Response:
    """What to send: a head plus a body source (bytes, pattern or nothing)."""

    def __init__(self, status: int, headers: Headers | None = None, body: bytes = b"",
                 *, pattern_len: int = 0, mode: str = "length", chunk: int = 4096,
                 body_delay: float = 0.0, close: bool = False) -> None:
        self.status = status
        self.headers = headers or []
        self.body = body
        self.pattern_len = pattern_len  # >0: stream pattern_bytes instead of body
        self.mode = mode  # "length" | "chunked" | "close" | "none"
        self.chunk = max(1, chunk)
        self.body_delay = body_delay
        self.close = close

    @property
    def body_len(self) -> int:
        return self.pattern_len if self.pattern_len else len(self.body)

    def pieces(self):
        if self.pattern_len:
            yield from iter_pattern(self.pattern_len)
        elif self.body:
            yield self.body


def _json_response(obj: Any, status: int = 200) -> _Response:
    return _Response(status, [("Content-Type", "application/json")],
                     json.dumps(obj).encode())


def _text_response(status: int, text: str) -> _Response:
    return _Response(status, [("Content-Type", "text/plain")], text.encode())


def _int_segment(path: str, prefix: str) -> int | None:
    """Parse the integer after ``prefix`` (e.g. '/bytes/'); None if malformed."""
    tail = path[len(prefix):]
    return int(tail) if tail.isdigit() else None


class _HttpConnection:
    """Serves one client connection: sequential, pipelining-safe, streaming."""

    def __init__(self, origin: "HttpOrigin", reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, conn_id: int) -> None:
        self.origin = origin
        self.reader = reader
        self.writer = writer
        self.conn_id = conn_id
        self.request_count = 0
        self.responses_sent = 0
        # Parser callbacks only queue events; run() acts on them in order, so
        # pipelined requests are answered strictly one after another.
        self.events: list[tuple[str, _Request]] = []
        self.current: _Request | None = None
        self.in_message = False
        self.ws_leftover: bytes | None = None
        self._url = b""
        self.parser = httptools.HttpRequestParser(self)

    # -- httptools callbacks -------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_message = True
        self.request_count += 1
        self.current = _Request(self.conn_id, self.request_count)
        self._url = b""

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.current is not None
        self.current.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        req = self.current
        assert req is not None
        req.method = self.parser.get_method().decode("ascii")
        req.target = self._url.decode("latin-1")
        req.http_version = self.parser.get_http_version()
        req.keep_alive = self.parser.should_keep_alive()
        req.record = self.origin._record(req)
        self.events.append(("head", req))

    def on_body(self, data: bytes) -> None:
        assert self.current is not None
        self.current.feed_body(data)

    def on_message_complete(self) -> None:
        req = self.current
        assert req is not None
        self.in_message = False
        req.record["body_len"] = req.body_len
        req.record["body_sha256"] = req.body_sha256
        self.events.append(("done", req))

    # -- main loop -----------------------------------------------------------

    async def run(self) -> None:
        while True:
            data = await self._read_or_idle_timeout()
            if not data:
                return
            if not self._feed(data):
                await self._send_simple(_text_response(400, "bad request\n"), close=True)
                return
            if not await self._process_events():
                return

    async def _read_or_idle_timeout(self) -> bytes:
        idle = self.origin.idle_close_after
        # Only an idle keep-alive connection (no partial request) may time out.
        if idle is None or self.in_message:
            return await self.reader.read(_READ_SIZE)
        try:
            return await asyncio.wait_for(self.reader.read(_READ_SIZE), idle)
        except asyncio.TimeoutError:
            return b""

    def _feed(self, data: bytes) -> bool:
        """Feed the parser; returns False on a protocol error."""
        while data:
            try:
                self.parser.feed_data(data)
                return True
            except httptools.HttpParserUpgrade as exc:
                offset = exc.args[0]
                req = self.current
                if req is not None and _is_ws_request(req):
                    self.ws_leftover = data[offset:]
                    return True
                # Upgrade we do not speak (e.g. h2c): answer as plain HTTP and
                # continue with a fresh parser on the bytes after the head.
                self.parser = httptools.HttpRequestParser(self)
                data = data[offset:]
            except httptools.HttpParserError:
                return False
        return True

    async def _process_events(self) -> bool:
        """Act on queued parser events; False means the connection is done."""
        while self.events:
            kind, req = self.events.pop(0)
            if kind == "head":
                await self._on_head(req)
                continue
            self.origin.requests_served += 1
            if req.path == "/ws" and self.ws_leftover is not None:
                await _WebSocketEcho(self.reader, self.writer).run(req, self.ws_leftover)
                return False
            if not await self._dispatch(req):
                return False
        return True

    async def _on_head(self, req: _Request) -> None:
        # 100 Continue must precede the body, so it goes out as soon as the head
        # is parsed (earlier pipelined requests have all been answered by now).
        if req.path == "/expect" and (req.header("expect") or "").lower() == "100-continue":
            self.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await self.writer.drain()

    async def _dispatch(self, req: _Request) -> bool:
        path = req.path
        if path == "/hang":
            await _discard_until_eof(self.reader)
            return False
        if path == "/drop":
            self.writer.close()
            return False
        if path == "/reset":
            _abort_with_rst(self.writer)
            return False
        if path.startswith("/slow/"):
            ms = _int_segment(path, "/slow/")
            if ms is not None:
                await asyncio.sleep(ms / 1000)
        resp = self.origin._route(req)
        return await self._send(req, resp)

    def _wants_close(self, req: _Request, resp: _Response) -> bool:
        limit = self.origin.max_requests_per_conn
        return (resp.close or not req.keep_alive or self.origin._stopping
                or (limit is not None and self.responses_sent + 1 >= limit))

    async def _send(self, req: _Request, resp: _Response) -> bool:
        close = self._wants_close(req, resp)
        headers = list(resp.headers)
        no_body = req.method == "HEAD" or resp.status in (204, 304) or resp.status < 200
        mode = resp.mode
        if mode == "chunked" and req.http_version == "1.0":
            mode = "close"  # HTTP/1.0 clients do not understand chunked
        if mode == "close":
            close = True
        elif mode == "length" and resp.status not in (204, 304):
            headers.append(("Content-Length", str(resp.body_len)))
        elif mode == "chunked":
            headers.append(("Transfer-Encoding", "chunked"))
        if not any(k.lower() == "connection" for k, _ in headers):
            if close:
                headers.append(("Connection", "close"))
            elif req.http_version == "1.0":
                headers.append(("Connection", "keep-alive"))
        self.writer.write(_head_bytes(resp.status, headers))
        if resp.body_delay:
            await self.writer.drain()
            await asyncio.sleep(resp.body_delay)
        if not no_body:
            await self._write_body(resp, mode)
        await self.writer.drain()
        self.responses_sent += 1
        if close:
            self.writer.close()
            return False
        return True

    async def _write_body(self, resp: _Response, mode: str) -> None:
        if mode == "chunked":
            for piece in resp.pieces():
                for i in range(0, len(piece), resp.chunk):
                    part = piece[i:i + resp.chunk]
                    self.writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                await self.writer.drain()
            self.writer.write(b"0\r\n\r\n")
            return
        for piece in resp.pieces():
            self.writer.write(piece)
            await self.writer.drain()

    async def _send_simple(self, resp: _Response, close: bool) -> None:
        headers = resp.headers + [("Content-Length", str(len(resp.body)))]
        if close:
            headers.append(("Connection", "close"))
        self.writer.write(_head_bytes(resp.status, headers) + resp.body)
        await self.writer.drain()
        if close:
            self.writer.close()


def _head_bytes(status: int, headers: Headers) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _is_ws_request(req: _Request) -> bool:
    return (req.path == "/ws" and req.method == "GET"
            and (req.header("upgrade") or "").lower() == "websocket"
            and req.header("sec-websocket-key") is not None)


class HttpOrigin(_ThreadedServer):
    """Keep-alive HTTP/1.1 origin with test endpoints (see module docs / README).

    ``idle_close_after``: close a keep-alive connection idle for that many
    seconds (simulates an upstream dropping a pooled connection).
    ``max_requests_per_conn``: the Nth response carries ``Connection: close``
    and the connection is closed after it.
    """

    def __init__(self, *, idle_close_after: float | None = None,
                 max_requests_per_conn: int | None = None) -> None:
        super().__init__()
        self.idle_close_after = idle_close_after
        self.max_requests_per_conn = max_requests_per_conn
        # Appended from the loop thread; list.append is atomic under the GIL.
        self.requests: list[dict[str, Any]] = []

    # -- helpers for tests ----------------------------------------------------

    @property
    def last_request(self) -> dict[str, Any] | None:
        return self.requests[-1] if self.requests else None

    def wait_for_requests(self, count: int, timeout: float = 2.0) -> bool:
        """Poll until at least ``count`` requests were seen (bounded wait)."""
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def wait_for_target(self, text: str, timeout: float = 10.0) -> bool:
        """Poll until the head of a request whose target contains ``text`` arrived (bounded wait):
        the readiness signal for "the request is in flight at the origin"."""
        deadline = time.monotonic() + timeout
        while not any(text in record["path"] for record in list(self.requests)):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def clear(self) -> None:
        self.requests.clear()

    # -- server side ------------------------------------------------------------

    async def _handle(self, reader, writer, conn_id):
        await _HttpConnection(self, reader, writer, conn_id).run()

    def _record(self, req: _Request) -> dict[str, Any]:
        # Recorded at head time so hung/aborted uploads still show up;
        # body_len/body_sha256 are filled in when the body completes.
        rec = {
            "method": req.method, "path": req.target, "headers": list(req.headers),
            "http_version": req.http_version, "conn_id": req.conn_id,
            "request_no": req.request_no, "body_len": None, "body_sha256": None,
        }
        self.requests.append(rec)
        if len(self.requests) > _MAX_RECORDED:
            del self.requests[0]
        return rec

    def _route(self, req: _Request) -> _Response:
        # Route on the first path segment: "/bytes/10" -> "/bytes".
        segments = req.path.split("/")
        handler = self._routes.get("/" + segments[1]) if len(segments) > 1 else None
        if handler is None:
            return _text_response(404, "not found\n")
        return handler(self, req)

    def _echo(self, req: _Request) -> _Response:
        return _json_response({
            "method": req.method, "path": req.target,
            "headers": [[k, v] for k, v in req.headers],
            "body_len": req.body_len, "body_sha256": req.body_sha256,
            "http_version": req.http_version, "conn_id": req.conn_id,
            "request_no": req.request_no,
        })

    def _bytes(self, req: _Request) -> _Response:
        n = _int_segment(req.path, "/bytes/")
        if n is None:
            return _text_response(400, "bad size\n")
        return _Response(200, [("Content-Type", "application/octet-stream")], pattern_len=n)

    def _chunked(self, req: _Request) -> _Response:
        n = _int_segment(req.path, "/chunked/")
        if n is None:
            return _text_response(400, "bad size\n")
        chunk = dict(req.query).get("chunk", "4096")
        size = int(chunk) if chunk.isdigit() and int(chunk) > 0 else 4096
        return _Response(200, [("Content-Type", "application/octet-stream")],
                         pattern_len=n, mode="chunked", chunk=size)

    def _close(self, req: _Request) -> _Response:
        n = _int_segment(req.path, "/close/")
        if n is None:
            return _text_response(400, "bad size\n")
        return _Response(200, [("Content-Type", "application/octet-stream")],
                         pattern_len=n, mode="close")

    def _status(self, req: _Request) -> _Response:
        code = _int_segment(req.path, "/status/")
        if code is None or not 200 <= code <= 599:
            return _text_response(400, "bad status (200-599)\n")
        if code in (204, 304):
            return _Response(code, mode="none")
        return _text_response(code, f"status {code}\n")

    def _slow(self, req: _Request) -> _Response:
        # The delay before the head already happened in _dispatch.
        return _text_response(200, "slow\n")

    def _slowbody(self, req: _Request) -> _Response:
        ms = _int_segment(req.path, "/slowbody/")
        if ms is None:
            return _text_response(400, "bad delay\n")
        resp = _text_response(200, "slowbody\n")
        resp.body_delay = ms / 1000
        return resp

    def _headers(self, req: _Request) -> _Response:
        extra = [(k, v) for k, v in req.query]
        has_cl = any(k.lower() == "content-length" for k, _ in extra)
        conn = ",".join(v for k, v in extra if k.lower() == "connection")
        close = "close" in [t.strip().lower() for t in conn.split(",")]
        return _Response(200, [("Content-Type", "text/plain")] + extra, b"ok",
                         mode="none" if has_cl else "length", close=close)

    def _upload(self, req: _Request) -> _Response:
        if req.method not in ("POST", "PUT"):
            return _text_response(405, "use POST or PUT\n")
        return _json_response({"body_len": req.body_len, "body_sha256": req.body_sha256})

    def _expect(self, req: _Request) -> _Response:
        return _json_response({"body_len": req.body_len, "body_sha256": req.body_sha256})

    def _ws_plain(self, req: _Request) -> _Response:
        # Reached only when the request was not a valid WebSocket upgrade.
        resp = _text_response(426, "websocket upgrade required\n")
        resp.headers.append(("Upgrade", "websocket"))
        return resp

    _routes: dict[str, Callable[["HttpOrigin", _Request], _Response]] = {
        "/echo": _echo,
        "/bytes": _bytes,
        "/chunked": _chunked,
        "/close": _close,
        "/status": _status,
        "/slow": _slow,
        "/slowbody": _slowbody,
        "/headers": _headers,
        "/upload": _upload,
        "/expect": _expect,
        "/ws": _ws_plain,
    }


# --------------------------------------------------------------------------- #
# WebSocket echo (RFC 6455, server side)
# --------------------------------------------------------------------------- #

_OP_CONT, _OP_TEXT, _OP_BIN, _OP_CLOSE, _OP_PING, _OP_PONG = 0, 1, 2, 8, 9, 10


def ws_accept_key(key: str) -> str:
    digest = hashlib.sha1((key.strip() + WS_GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def _ws_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", first, n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", first, 126, n)
    else:
        head = struct.pack("!BBQ", first, 127, n)
    return head + payload  # server frames are never masked


class _WebSocketEcho:
    """Echoes each data frame back with the same opcode/FIN (keeps fragmentation)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buf = b""

    async def run(self, req: _Request, leftover: bytes) -> None:
        accept = ws_accept_key(req.header("sec-websocket-key") or "")
        self.writer.write(_head_bytes(101, [
            ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", accept)]))
        await self.writer.drain()
        self.buf = leftover
        while True:
            frame = await self._read_frame()
            if frame is None:
                return
            fin, opcode, payload = frame
            if opcode == _OP_CLOSE:
                # Echo the status code back, then close the TCP connection.
                self.writer.write(_ws_frame(_OP_CLOSE, payload[:2]))
                await self.writer.drain()
                self.writer.close()
                return
            if opcode == _OP_PING:
                self.writer.write(_ws_frame(_OP_PONG, payload))
            elif opcode in (_OP_TEXT, _OP_BIN, _OP_CONT):
                self.writer.write(_ws_frame(opcode, payload, fin))
            await self.writer.drain()

    async def _need(self, n: int) -> bool:
        while len(self.buf) < n:
            data = await self.reader.read(_READ_SIZE)
            if not data:
                return False
            self.buf += data
        return True

    async def _take(self, n: int) -> bytes | None:
        if not await self._need(n):
            return None
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    async def _read_frame(self) -> tuple[bool, int, bytes] | None:
        head = await self._take(2)
        if head is None:
            return None
        fin, opcode = bool(head[0] & 0x80), head[0] & 0x0F
        masked, length = bool(head[1] & 0x80), head[1] & 0x7F
        if length == 126:
            ext = await self._take(2)
            if ext is None:
                return None
            length = struct.unpack("!H", ext)[0]
        elif length == 127:
            ext = await self._take(8)
            if ext is None:
                return None
            length = struct.unpack("!Q", ext)[0]
        mask = await self._take(4) if masked else b""
        payload = await self._take(length)
        if payload is None or mask is None:
            return None
        if masked:
            payload = _unmask(payload, mask)
        return fin, opcode, payload


def _unmask(payload: bytes, mask: bytes) -> bytes:
    # XOR via big ints: fast enough for multi-MB frames without numpy.
    n = len(payload)
    if n == 0:
        return payload
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")

