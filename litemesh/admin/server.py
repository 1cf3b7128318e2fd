"""The admin listener: a small HTTP/1.1 server the master runs for its control plane.

Endpoints: ``GET /status`` (JSON), ``GET /ready`` (200 or 503, never behind the token), ``GET /metrics``
(Prometheus text 0.0.4) and ``POST /reload``; HEAD works wherever GET does.  The server knows nothing of
the master: it calls an :class:`AdminApp`.

Theory of operation.  Each connection feeds its bytes to the data plane's sans-IO
:class:`~litemesh.http.request.RequestReader`, so framing rules and size limits are the same, with a
small body bound (bodies are read and dropped).  Complete requests are answered strictly in order
(pipelining).  The GET endpoints call the app synchronously and are answered at once; only a reload
awaits, in a task of its own, so a slow reload holds up its own connection and nothing else.  Reloads
run one at a time (a lock) in tasks of their own and are shielded from the request that asked: a
client that hangs up does not cancel a reload half-way.  A connection is closed after a malformed
request (its boundaries are lost), after a response marked ``Connection: close``, and by one timer
that covers an idle or slow client and a client that stops reading our responses.

Every error body has the data plane's shape, ``{"error": ..., "status": ..., "request_id": ...}``.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import socket
from collections import deque
from typing import Any, Coroutine, Protocol
from urllib.parse import urlsplit

from ..errors import ClientError, GatewayError, internal_error
from ..http.request import ReaderLimits, RequestHandler, RequestHead, RequestReader
from ..http.writer import CONTINUE_100, local_response
from ..plural import plural

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; the fallback keeps this module standalone
    orjson = None  # type: ignore[assignment]

__all__ = ["AdminApp", "AdminServer"]

log = logging.getLogger("litemesh.admin")

_Headers = tuple[tuple[bytes, bytes], ...]
_Reply = tuple[int, _Headers, bytes]  # status, headers, body

_NO_STORE = (b"Cache-Control", b"no-store")  # status and metrics are live values
_JSON: _Headers = ((b"Content-Type", b"application/json"), _NO_STORE)
_METRICS: _Headers = ((b"Content-Type", b"text/plain; version=0.0.4; charset=utf-8"), _NO_STORE)
_CHALLENGE: _Headers = ((b"WWW-Authenticate", b"Bearer"),)
_KEEP_ALIVE = (b"Connection", b"keep-alive")  # HTTP/1.0 clients close unless told otherwise

_READ = frozenset((b"GET", b"HEAD"))
_WRITE = frozenset((b"POST",))
_MAX_QUEUED = 8  # pipelined requests waiting behind a reload before reading pauses
_LINGER = 2.0  # seconds to drain a client's input after an error answer, before closing
_TIMEOUT = ClientError(408, "request_timeout", "client timed out sending the request")


class AdminApp(Protocol):
    """What the admin server serves; implemented by the master."""

    def status(self) -> dict[str, Any]:
        """JSON-serialisable state of the whole process group."""
        ...

    def ready(self) -> bool:
        """False before the workers are up and while draining."""
        ...

    def metrics(self) -> str:
        """Prometheus text exposition format 0.0.4."""
        ...

    async def reload(self) -> tuple[bool, dict[str, Any]]:
        """Reload the configuration: ``(ok, details)``; ``details`` goes into the response body."""
        ...


def _dumps_orjson(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)


def _dumps_json(obj: Any) -> bytes:
    # allow_nan=False: NaN is not JSON; the endpoint answers 500 rather than emit a body parsers reject
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


_dumps = _dumps_orjson if orjson is not None else _dumps_json


def _json_reply(status: int, obj: Any) -> _Reply:
    return status, _JSON, _dumps(obj)


def _error_reply(status: int, message: str, request_id: bytes | None, headers: _Headers = (),
                 details: dict[str, Any] | None = None) -> _Reply:
    body: dict[str, Any] = {
        "error": message,
        "status": status,
        "request_id": request_id.decode("ascii") if request_id else None,
    }
    if details:
        for key, value in details.items():
            body.setdefault(key, value)  # details never overwrite the error shape
    return status, _JSON + headers, _dumps(body)


def _digest(secret: bytes) -> bytes:
    # Comparing digests, not the values, keeps the token's length out of the timing as well.
    return hashlib.sha256(secret).digest()


def _request_path(target: bytes) -> bytes:
    if target[:1] != b"/":
        if target[:4].lower() != b"http":
            return target  # "*": matches no endpoint
        target = urlsplit(target).path or b"/"  # absolute-form, as sent to a proxy
    return target.split(b"?", 1)[0]


class _Request:
    """What answering needs from a request head (or the error that ended reading, if ``head`` is None)."""

    __slots__ = ("method", "path", "authorization", "request_id", "keep_alive", "http10", "error")

    def __init__(self, head: RequestHead | None, error: GatewayError | None = None) -> None:
        self.error = error
        self.authorization: bytes | None = None
        if head is None:
            self.method = b""
            self.path = b""
            self.request_id: bytes | None = None
            self.keep_alive = False
            self.http10 = False
            return
        self.method = head.method
        self.path = _request_path(head.target)
        self.request_id = head.request_id
        self.keep_alive = head.keep_alive and head.upgrade is None  # no switch offered: close after it
        self.http10 = head.version == b"1.0"
        for name, value in head.headers:
            if name.lower() == b"authorization":
                # two Authorization fields are ambiguous: never accept either
                self.authorization = value if self.authorization is None else b""


class AdminServer:
    """HTTP/1.1 admin listener serving an :class:`AdminApp`.

    Args:
        app: the application answering the endpoints.
        token: when set, every endpoint but ``GET /ready`` requires ``Authorization: Bearer <token>``.
        header_timeout: seconds an idle connection may take to send a complete request before it is
            closed (408 if a request was under way); also how long a client may stall reading.
        max_body_size: request bodies are read and dropped; larger ones are answered 413.
        close_timeout: how long :meth:`close` lets busy connections finish before aborting them.
    """

    def __init__(self, app: AdminApp, *, token: str | None = None, header_timeout: float = 30.0,
                 max_body_size: int = 64 << 10, close_timeout: float = 5.0) -> None:
        if token is not None and not token:
            raise ValueError("admin token must not be empty")
        self._app = app
        self._token = None if token is None else _digest(token.encode("utf-8"))
        self.header_timeout = header_timeout
        self.close_timeout = close_timeout
        # The data plane's framing rules with admin-sized limits; a body limit of 0 would mean unlimited.
        self.limits = ReaderLimits(max_request_line=8192, max_header_size=16384, max_headers=64,
                                   max_body_size=max(1, max_body_size))
        self.loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[_AdminConnection] = set()
        self._reloads: set[asyncio.Task[tuple[bool, dict[str, Any]] | None]] = set()
        self._reload_lock = asyncio.Lock()
        self._closing = False
        self._all_closed: asyncio.Future[None] | None = None
        self._endpoints = {
            b"/status": (_READ, b"GET, HEAD", self._status),
            b"/ready": (_READ, b"GET, HEAD", self._ready),
            b"/metrics": (_READ, b"GET, HEAD", self._metrics),
            b"/reload": (_WRITE, b"POST", self._reload),
        }

    def set_token(self, token: str | None) -> None:
        """Require ``token`` from the next request on (a reload changed ``admin.token``); None: no token."""
        if token is not None and not token:
            raise ValueError("admin token must not be empty")
        self._token = None if token is None else _digest(token.encode("utf-8"))

    @property
    def port(self) -> int | None:
        """The bound port, once started."""
        if self._server is None or not self._server.sockets:
            return None
        return self._server.sockets[0].getsockname()[1]

    @property
    def closing(self) -> bool:
        return self._closing

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` and return the bound port (``port`` 0 picks an ephemeral one).

        Raises:
            OSError: the address cannot be bound.
            RuntimeError: already started.
        """
        if self._server is not None or self._closing:
            raise RuntimeError("admin server already started")
        loop = self.loop = asyncio.get_running_loop()
        if port == 0:
            # Every address a name resolves to would get its own ephemeral port; bind the first only,
            # so the one port returned is the whole truth.
            infos = await loop.getaddrinfo(host or None, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
            host = infos[0][4][0]
        # No SO_REUSEPORT (unlike worker listeners): a second master must fail to bind, not share.
        self._server = await loop.create_server(lambda: _AdminConnection(self), host or None, port,
                                                reuse_address=True, backlog=128)
        return self.port  # type: ignore[return-value]

    async def close(self) -> None:
        """Stop accepting; close idle connections now and busy ones after their current response.

        Connections still open after ``close_timeout`` seconds are aborted and a reload still
        running is cancelled (the master is going away; nobody would read its answer).
        """
        if self._closing:
            return
        self._closing = True
        server = self._server
        if server is None:
            return
        server.close()
        for conn in list(self._connections):
            conn.shutdown()
        if self._connections or self._reloads:
            self._all_closed = self.loop.create_future()  # type: ignore[union-attr]
            try:
                await asyncio.wait_for(asyncio.shield(self._all_closed), self.close_timeout)
            except asyncio.TimeoutError:
                log.warning("admin: %s still busy after %.1fs, aborting",
                            plural(len(self._connections), "connection"), self.close_timeout)
                for conn in list(self._connections):
                    conn.abort()
                reloads = list(self._reloads)
                for task in reloads:
                    task.cancel()
                if reloads:
                    await asyncio.wait(reloads, timeout=1.0)
        await server.wait_closed()

    # -- used by connections -----------------------------------------------------------------
    def connection_opened(self, conn: _AdminConnection) -> None:
        self._connections.add(conn)

    def connection_closed(self, conn: _AdminConnection) -> None:
        self._connections.discard(conn)
        self._check_all_closed()

    def dispatch(self, request: _Request) -> _Reply | Coroutine[Any, Any, _Reply]:
        """The reply to ``request``, or a coroutine producing it (the endpoint awaits)."""
        path, method = request.path, request.method
        endpoint = self._endpoints.get(path)
        exempt = path == b"/ready" and method in _READ  # probes carry no secrets
        # Authenticate before routing, so an unauthenticated client learns nothing about paths.
        if self._token is not None and not exempt and not self._authorized(request.authorization):
            return _error_reply(401, "missing or invalid bearer token", request.request_id, _CHALLENGE)
        if endpoint is None:
            return _error_reply(404, "not found", request.request_id)
        methods, allow, handler = endpoint
        if method not in methods:
            return _error_reply(405, "method not allowed", request.request_id, ((b"Allow", allow),))
        try:
            return handler(request)
        except Exception:
            log.exception("admin: %s %s failed", method.decode("latin-1"), path.decode("latin-1"))
            return _error_reply(500, "internal error", request.request_id)

    # -- endpoints -----------------------------------------------------------------------------
    def _authorized(self, value: bytes | None) -> bool:
        if not value:
            return False
        scheme, _, credentials = value.strip().partition(b" ")
        credentials = credentials.strip()
        if scheme.lower() != b"bearer" or not credentials:
            return False
        return hmac.compare_digest(_digest(credentials), self._token)  # type: ignore[arg-type]

    def _status(self, request: _Request) -> _Reply:
        return _json_reply(200, self._app.status())

    def _ready(self, request: _Request) -> _Reply:
        ready = bool(self._app.ready())
        return _json_reply(200 if ready else 503, {"ready": ready})

    def _metrics(self, request: _Request) -> _Reply:
        text = self._app.metrics()
        return 200, _METRICS, text.encode("utf-8") if isinstance(text, str) else bytes(text)

    def _reload(self, request: _Request) -> Coroutine[Any, Any, _Reply]:
        # Started now, not when the reply coroutine first runs: a reload asked for is a reload done,
        # even if the client hangs up at once.
        task = self.loop.create_task(self._run_reload())  # type: ignore[union-attr]
        self._reloads.add(task)
        task.add_done_callback(self._reload_done)
        return self._reload_reply(task, request.request_id)

    async def _reload_reply(self, task: asyncio.Task[tuple[bool, dict[str, Any]] | None],
                            request_id: bytes | None) -> _Reply:
        result = await asyncio.shield(task)
        try:
            if result is None:
                return _error_reply(500, "internal error", request_id)
            ok, details = result
            details = dict(details or {})
            if ok:
                details.pop("ok", None)
                return _json_reply(200, {"ok": True, **details})
            message = details.get("error")
            if not isinstance(message, str) or not message:
                message = "reload failed"
            return _error_reply(422, message, request_id, details=details)
        except Exception:
            log.exception("admin: reload returned a value that cannot be answered")
            return _error_reply(500, "internal error", request_id)

    async def _run_reload(self) -> tuple[bool, dict[str, Any]] | None:
        # Runs even when the client that asked is gone, so failures are logged here; None means failed.
        async with self._reload_lock:
            try:
                return await self._app.reload()
            except Exception:
                log.exception("admin: reload failed")
                return None

    def _reload_done(self, task: asyncio.Task[Any]) -> None:
        self._reloads.discard(task)
        self._check_all_closed()

    def _check_all_closed(self) -> None:
        waiter = self._all_closed
        if waiter is not None and not waiter.done() and not self._connections and not self._reloads:
            waiter.set_result(None)


class _AdminConnection(asyncio.Protocol, RequestHandler):
    """One client connection: requests in, replies out in order, at most one awaiting endpoint."""

    __slots__ = (
        "server", "loop", "transport", "reader", "queue", "receiving", "busy", "closing", "reading_done",
        "reading_paused", "writing_paused", "timer",
    )

    def __init__(self, server: AdminServer) -> None:
        self.server = server
        self.loop: asyncio.AbstractEventLoop = server.loop  # type: ignore[assignment]
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.reader = RequestReader(self, server.limits)
        self.queue: deque[_Request] = deque()  # complete requests not answered yet
        self.receiving: _Request | None = None  # head seen, end not yet
        self.busy: asyncio.Task[_Reply] | None = None  # the awaiting endpoint at the head of the line
        self.closing = False  # answer what is owed, then close
        self.reading_done = False  # later bytes are not requests (parse error, protocol switch, closing)
        self.reading_paused = False
        self.writing_paused = False
        self.timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connection_opened(self)
        if self.server.closing:  # accepted just before close(): nobody will serve it
            self._close()
            return
        self._arm_timer()

    def data_received(self, data: bytes) -> None:
        if self.reading_done:
            return
        try:
            self.reader.feed(data)
        except GatewayError as error:
            self._fail(error)
        except Exception:  # a bug of ours: this connection answers 500 and closes, the server goes on
            log.exception("admin: error while reading a request")
            self._fail(internal_error())

    def eof_received(self) -> bool | None:
        # Half-close: answer what was received, then close.  A partial request is dropped.
        self.reading_done = True
        if self.busy is None and not self.queue:
            return False
        self.closing = True
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.reading_done = True
        self.reader.close()
        self._cancel_timer()
        self.queue.clear()
        if self.busy is not None:
            self.busy.cancel()  # the reload itself is shielded and goes on
            self.busy = None
        self.server.connection_closed(self)

    def pause_writing(self) -> None:
        self.writing_paused = True
        self._arm_timer()  # a client that stops reading is dropped like one that stops sending

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._cancel_timer()
        self._pump()

    # -- RequestReader callbacks -----------------------------------------------------------------
    def on_request_head(self, head: RequestHead) -> None:
        if self.closing:
            return
        self.receiving = _Request(head)
        # Only when nothing is owed: a 100 must not jump ahead of earlier pipelined answers.
        if head.expect_continue and head.has_body and self.busy is None and not self.queue:
            self._write(CONTINUE_100)

    def on_request_body(self, data: bytes) -> None:
        pass  # read and dropped; the reader bounds the size

    def on_request_end(self) -> None:
        request, self.receiving = self.receiving, None
        if request is None or self.closing:
            return
        self._cancel_timer()
        self.queue.append(request)
        self._pump()
        if len(self.queue) >= _MAX_QUEUED and not self.reading_paused and not self.transport.is_closing():
            self.reading_paused = True
            self.transport.pause_reading()

    def on_request_upgrade(self, rest: bytes) -> None:
        # No protocol switch here: the request was answered (or queued) as plain HTTP; what follows
        # is not HTTP we could frame, so close once the owed answers are out.
        self.reading_done = True
        self.closing = True
        if self.busy is None and not self.queue:
            self._close()

    # -- used by the server --------------------------------------------------------------------
    def shutdown(self) -> None:
        """Close now if idle, else after the requests already received are answered."""
        self.closing = True
        self.reading_done = True
        if self.busy is None and not self.queue:
            self._close()

    def abort(self) -> None:
        self.transport.abort()

    # -- internals -----------------------------------------------------------------------------
    def _pump(self) -> None:
        """Answer queued requests in order until one awaits or the connection closes."""
        while self.queue and self.busy is None and not self.writing_paused:
            if self.transport.is_closing():
                return
            request = self.queue.popleft()
            if request.error is not None:  # keep_alive is False: answered, then closed
                self._respond(request, _error_reply(request.error.status, request.error.message, None))
                return
            reply = self.server.dispatch(request)
            if isinstance(reply, tuple):
                if not self._respond(request, reply):
                    return
                continue
            self.busy = self.loop.create_task(reply)
            self.busy.add_done_callback(lambda task, request=request: self._busy_done(task, request))
            return
        if self.busy is not None or self.queue:
            return
        if self.reading_paused and not self.transport.is_closing():
            self.reading_paused = False
            self.transport.resume_reading()
        if self.closing:
            self._close()
        elif not self.writing_paused:
            self._arm_timer()  # idle: the next request must arrive in time

    def _busy_done(self, task: asyncio.Task[_Reply], request: _Request) -> None:
        if self.busy is task:
            self.busy = None
        if task.cancelled() or self.transport.is_closing():
            return
        try:
            reply = task.result()
        except Exception:
            log.exception("admin: endpoint task failed")
            reply = _error_reply(500, "internal error", request.request_id)
        if self._respond(request, reply):
            self._pump()

    def _respond(self, request: _Request, reply: _Reply) -> bool:
        """Write ``reply``; False if the connection is closing because of it."""
        status, headers, body = reply
        keep_alive = request.keep_alive and not (self.closing and not self.queue)
        if keep_alive and request.http10:
            headers += (_KEEP_ALIVE,)
        self._write(local_response(status, headers, body, keep_alive=keep_alive,
                                   head_only=request.method == b"HEAD", request_id=request.request_id))
        if not keep_alive:
            if request.error is not None:
                self._linger()
            else:
                self._close()
            return False
        return True

    def _fail(self, error: GatewayError) -> None:
        """The byte stream is unusable: answer what is owed, then ``error``, then close."""
        self.reading_done = True
        self.receiving = None
        if not self.reading_paused and not self.transport.is_closing():
            self.reading_paused = True
            self.transport.pause_reading()
        self.queue.append(_Request(None, error))
        self._pump()

    def _linger(self) -> None:
        # Closing with unread input makes the kernel send RST, which can destroy the error answer
        # before the client reads it: send FIN, read and drop input for a moment, then close.
        self.closing = True
        self.reading_done = True
        transport = self.transport
        if transport.is_closing() or not transport.can_write_eof():
            self._close()
            return
        transport.write_eof()
        if self.reading_paused:
            self.reading_paused = False
            transport.resume_reading()
        self._cancel_timer()
        self.timer = self.loop.call_later(_LINGER, self._close)  # eof_received closes sooner

    def _write(self, data: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(data)

    def _close(self) -> None:
        self.closing = True
        self.reading_done = True
        self._cancel_timer()
        self.transport.close()  # sends what is buffered first

    def _arm_timer(self) -> None:
        self._cancel_timer()
        self.timer = self.loop.call_later(self.server.header_timeout, self._on_timeout)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _on_timeout(self) -> None:
        self.timer = None
        if self.writing_paused:  # the client stopped reading our answers
            self.transport.abort()
        elif self.busy is not None or self.queue:
            return
        elif self.reader.in_head or self.receiving is not None:
            self._fail(_TIMEOUT)
        else:
            self._close()  # idle keep-alive connection
