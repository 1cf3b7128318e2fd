"""One request and its response through the proxy: the fixed phases of the request lifecycle.

Phases (DESIGN §2), run by :meth:`Exchange.start` when the request reaches the head of its
connection's line:

1. route            — normalize the path, match host + method + path in the route trie (404 if none;
                      400 if a lenient backend would read the path as another route's); keep
                      only the protocol switches the route allows;
2. request filters  — the route's chain in order; any may answer with a local reply;
3. upstream peer    — the service's balancer picks a target; a pooled connection or a new one;
4. forward          — the rewritten head and the body stream to the upstream with back-pressure;
   retry            — only a request that never reached a live upstream (stale pooled connection,
                      nothing of the body sent) goes again, on a fresh connection;
5. response filters — in reverse order, on the response head; the body streams back;
6. log              — counters in the worker state.

Everything is callback driven: no task per request.  Only opening a new upstream connection runs
a coroutine.  Errors anywhere become one :class:`~litemesh.errors.GatewayError` and one JSON answer
(or, once response bytes went out, a closed connection — the only honest signal left).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..errors import ClientError, GatewayError, UpstreamError, internal_error
from ..filters.context import RequestContext
from ..http.forwarded import forwarded_element
from ..http.headers import UNSEEN, FieldKinds, connection_named, connection_tokens, routing_host, upgrade_protocols
from ..http.request import ALLOW
from ..http.target import routing_paths, split_target
from ..http.writer import CONTINUE_100, LAST_CHUNK, chunk, date_header, error_response, join, status_line
from .contracts import Downstream, ResponseHandler
from .router import LocalReply

if TYPE_CHECKING:
    from ..http.request import RequestHead
    from .router import Route, RouteEntry
    from .snapshot import Snapshot
    from .upstream import UpstreamConnection

#: bytes of request body buffered (connecting, or a pipelined request waiting its turn) before
#: reading from the client pauses
BODY_BUFFER_HIGH = 256 * 1024
#: a request body still unread when a local answer was given is read and dropped up to this size
#: (keeps the connection); a larger one closes the connection instead
DISCARD_LIMIT = 1 << 20

_CONTENT_LENGTH, _TRANSFER_ENCODING, _CONNECTION, _UPGRADE, _DROP, _DATE = 1, 2, 3, 4, 5, 6
_RESPONSE_SPECIAL = {
    b"content-length": _CONTENT_LENGTH, b"transfer-encoding": _TRANSFER_ENCODING, b"connection": _CONNECTION,
    b"upgrade": _UPGRADE, b"keep-alive": _DROP, b"proxy-connection": _DROP, b"te": _DROP, b"trailer": _DROP,
    b"proxy-authenticate": _DROP, b"proxy-authorization": _DROP, b"date": _DATE,
}
_RESPONSE_KINDS = FieldKinds(_RESPONSE_SPECIAL)
#: only a field line whose name has the length and first letter of one above is looked at (FieldKinds)
_LONGEST_SPECIAL = _RESPONSE_KINDS.longest
_FIRST_LETTERS = _RESPONSE_KINDS.letters
log = logging.getLogger("litemesh.upstream")
_NOT_FOUND = ClientError(404, "not_found", "no route matches the request")
_AMBIGUOUS_PATH = ClientError(400, "bad_request", "ambiguous path: a backend may read it as another route")
_TRACE_REFUSED = ClientError(405, "method_not_allowed", "TRACE is not allowed", headers=ALLOW)
_METHODS: dict[bytes, str] = {}


def new_exchange(conn: Downstream, head: "RequestHead | None", snapshot: "Snapshot") -> "Exchange":
    """``Exchange(conn, head, snapshot)`` without the generic constructor call: compiled, a C
    allocation and C stores (the protocol makes one per request)."""
    exchange = Exchange.__new__(Exchange)
    exchange._init(conn, head, snapshot)
    return exchange


class Exchange(ResponseHandler):
    __slots__ = (
        "head", "snapshot", "request_id", "entry", "params", "upstream_path", "query", "target",
        "upstream", "upstream_head", "body_buffer", "body_buffered", "body_sent",
        "response_started", "done", "head_only", "keep_alive", "out", "out_chunked",
        "tries", "upgrade_rest", "discard_body", "local_error", "read_timeout", "write_timeout",
        "continue_sent", "started", "bytes_in", "bytes_out", "inflight_slot", "context",
    )

    def __init__(self, conn: Downstream, head: "RequestHead | None", snapshot: "Snapshot") -> None:
        self._init(conn, head, snapshot)

    def _init(self, conn: Downstream, head: "RequestHead | None", snapshot: "Snapshot") -> None:
        self.conn = conn
        self.head = head
        self.snapshot = snapshot
        rid = head.request_id if head is not None else None
        self.request_id: bytes = rid if rid is not None else conn.state.new_request_id()
        self.entry: RouteEntry | None = None
        self.params: dict[str, str] | None = None
        self.upstream_path = b"/"
        self.query = b""
        self.target = None
        self.upstream: UpstreamConnection | None = None
        self.upstream_head = b""
        self.body_buffer: list[bytes] | None = None
        self.body_buffered = 0
        self.request_done = False
        self.body_sent = False
        self.response_started = False
        self.done = False
        self.head_only = head is not None and head.method == b"HEAD"
        self.keep_alive = head is not None and head.keep_alive
        self.out: list[bytes] = []
        self.out_chunked = False
        self.close_delimited_upstream = False
        self.tries = 0
        self.upgrade_rest: bytes | None = None
        self.discard_body = False
        self.local_error: GatewayError | None = None
        self.read_timeout = 60.0
        self.write_timeout = 60.0
        self.status = 0
        self.continue_sent = False
        self.started = conn.state.clock()  # -1 once accounted in the metrics
        self.bytes_in = 0  # request body bytes, as received
        self.bytes_out = 0  # response bytes written to the client
        self.inflight_slot = -1  # the target's shared in-flight counter, while counted
        self.context: RequestContext | None = None  # what the route's filters see (routes with filters only)

    # -- phases ------------------------------------------------------------------------------
    def start(self) -> None:
        if self.local_error is not None:
            self.respond_error(self.local_error)
            return
        head = self.head
        if head.method == b"TRACE" and not self.snapshot.allow_trace:
            self.respond_error(_TRACE_REFUSED)  # it would echo cookies and credentials back (XST)
            return
        try:
            found = self._route()
        except ClientError as error:
            self.respond_error(error)
            return
        if found is None:
            self.respond_error(_NOT_FOUND)
            return
        entry = self.entry = found[0]
        self.params = found[1]
        if head.upgrade is not None:
            self._keep_allowed_upgrades(entry.route.upgrades)
        if entry.request_filters or entry.response_filters:
            context = self.context = RequestContext(head.method, self.upstream_path, self.query, self.params,
                                                    head.headers, self.conn.client_ip, entry.route.name,
                                                    self.request_id)
            for request_filter in entry.request_filters:
                request_filter.on_request(context)
                if context.reply is not None:
                    status, fields, body = context.reply
                    self.respond_local(LocalReply(status, fields, body))
                    return
            self.upstream_path = context.path
            self.query = context.query
        route = entry.route
        if route.reply is not None:
            self.respond_local(route.reply)
            return
        self._forward(route)

    def _route(self) -> "tuple[RouteEntry, dict[str, str] | None] | None":
        head = self.head
        if head.target == b"*":
            return None
        path, self.query, authority = split_target(head.target)
        if authority is not None:
            host = routing_host(authority)
            if host is None:
                raise ClientError(400, "bad_request", "invalid authority in request target")
        else:
            host = head.route_host
        path, lenient = routing_paths(path, self.snapshot.merge_slashes)
        self.upstream_path = path
        methods = _METHODS  # (compiled: a typed dict, so the lookup is a C call)
        method = methods.get(head.method)
        if method is None:
            method = methods.setdefault(head.method, head.method.decode("ascii"))
        router = self.snapshot.router
        found = router.match(host, method, path.decode("latin-1"))
        if lenient is not None:
            other = router.match(host, method, lenient.decode("latin-1"))
            if (other[0] if other else None) is not (found[0] if found else None):
                raise _AMBIGUOUS_PATH
        return found

    def _keep_allowed_upgrades(self, allowed: frozenset[bytes]) -> None:
        """Forward only the protocol switches the route allows; the others are dropped and the
        request goes as plain HTTP/1.1.  Either way the client's parser has switched: no keep-alive."""
        head = self.head
        self.keep_alive = False
        offered = [token.strip() for token in head.upgrade.split(b",")
                   if token.strip() and upgrade_protocols(token)[0] in allowed]
        head.upgrade = b", ".join(offered) if offered else None

    def _forward(self, route: "Route") -> None:
        service = route.service
        target = self.target = service.balancer.pick()
        metrics = self.conn.state.metrics
        if metrics is not None and target.inflight_slot >= 0:
            self.inflight_slot = target.inflight_slot
            metrics.inflight_add(target.inflight_slot, 1)
        self.read_timeout = service.read_timeout
        self.write_timeout = service.write_timeout
        head = self.head
        if head.expect_continue and not self.request_done:
            self.conn.write(CONTINUE_100)  # we are ready for the body: say so (the upstream never sees Expect)
            self.continue_sent = True
        self.upstream_head = self._upstream_head(route, target.host_header)
        self._connect_or_reuse()

    def _connect_or_reuse(self) -> None:
        pool = self.target.pool
        upstream = pool.acquire()
        if upstream is not None:
            self._attach(upstream)
        else:
            pool.open_soon(self._start_connect)  # (batched per loop turn: see CONNECTS_PER_TURN)

    def _start_connect(self) -> None:
        if not self.done:  # (the client may have left while the connect waited for its turn)
            self.conn.loop.create_task(self._connect(self.target.pool))

    async def _connect(self, pool) -> None:  # type: ignore[no-untyped-def]
        try:
            upstream = await pool.connect()
        except GatewayError as error:
            if not self.done:
                self.on_upstream_error(error)
            return
        except Exception:  # a bug of ours, or a surprise from the resolver: answer it, never hang
            log.exception("connecting to upstream %s failed", pool.host)
            if not self.done:
                self.on_upstream_error(internal_error())
            return
        if self.done:
            pool.release(upstream)  # the client left meanwhile; the fresh connection is still good
            return
        self._attach(upstream)

    def _attach(self, upstream: "UpstreamConnection") -> None:
        self.upstream = upstream
        upstream.bind(self, self.head_only, self.read_timeout, self.write_timeout)
        if self.conn.writing_paused:
            upstream.transport.pause_reading()
        buffered = self.body_buffer
        if buffered:
            self.body_buffer = None
            self.body_buffered = 0
            self.body_sent = True
            upstream.send(b"".join([self.upstream_head, *buffered]))
            self.conn.resume_reading_for_buffer()
        else:
            upstream.send(self.upstream_head)

    def _upstream_head(self, route: "Route", target_host: bytes) -> bytes:
        head = self.head
        snapshot = self.snapshot
        client_host = head.host or b""
        host = client_host if route.preserve_host and client_host else target_host
        parts = [head.method, b" ", self.upstream_path, self.query, b" HTTP/1.1\r\nHost: ", host, b"\r\n"]
        for name, value in head.headers:  # (appends: compiled, each is a C call, a tuple would be an object)
            parts.append(name)
            parts.append(b": ")
            parts.append(value)
            parts.append(b"\r\n")
        conn = self.conn
        client_ip = conn.client_ip
        trusted = snapshot.trusted_proxies
        if trusted is not None and client_ip in trusted:  # a proxy we trust: believe what it forwards
            forwarded_for = head.forwarded_for + b", " + client_ip if head.forwarded_for else client_ip
            proto = head.forwarded_proto or conn.scheme
            forwarded_host = head.forwarded_host or client_host
            real_ip = trusted.client_address(forwarded_for) if head.forwarded_for else client_ip
            forwarded = head.forwarded
            parts.append(b"X-Forwarded-For: ")
            parts.append(forwarded_for)
            parts.append(b"\r\nX-Forwarded-Proto: ")
            parts.append(proto)
            parts.append(b"\r\nX-Real-IP: ")
            parts.append(real_ip)
            parts.append(b"\r\n")
        else:  # anything the client claimed about itself is replaced by what we saw
            identity = conn.identity_fields
            if identity is None:  # (the same for every request of this connection)
                identity = b"".join((b"X-Forwarded-For: ", client_ip, b"\r\nX-Forwarded-Proto: ", conn.scheme,
                                     b"\r\nX-Real-IP: ", client_ip, b"\r\n"))
                conn.identity_fields = identity
            parts.append(identity)
            forwarded_host = client_host
            forwarded = None
        if forwarded_host:
            parts.append(b"X-Forwarded-Host: ")
            parts.append(forwarded_host)
            parts.append(b"\r\n")
        if snapshot.emit_forwarded:
            element = forwarded_element(client_ip, conn.scheme, client_host)
            parts += (b"Forwarded: ", forwarded + b", " + element if forwarded else element, b"\r\n")
        elif forwarded:
            parts += (b"Forwarded: ", forwarded, b"\r\n")
        if head.via:
            parts += (b"Via: ", head.via + b", " + snapshot.via if snapshot.via else head.via, b"\r\n")
        elif snapshot.via:
            parts.append(snapshot.via_field)
        if snapshot.request_id_header:
            parts.append(snapshot.request_id_prefix)
            parts.append(self.request_id)
            parts.append(b"\r\n")
        if head.chunked:
            parts.append(b"Transfer-Encoding: chunked\r\n")
        elif head.content_length >= 0:
            parts.append(b"Content-Length: %d\r\n" % head.content_length)
        if head.upgrade is not None:
            parts += (b"Connection: upgrade\r\nUpgrade: ", head.upgrade, b"\r\n")
        parts.append(b"\r\n")
        return join(parts)

    # -- request body (from the downstream protocol) -------------------------------------------
    def on_body(self, data: bytes) -> None:
        self.bytes_in += len(data)
        if self.head.chunked:
            data = chunk(data)
        self._body_out(data)

    def on_end(self) -> None:
        self.request_done = True
        if self.head.chunked:
            self._body_out(LAST_CHUNK)

    def _body_out(self, data: bytes) -> None:
        upstream = self.upstream
        if upstream is not None:
            self.body_sent = True
            upstream.send(data)
        elif self.discard_body or self.done:
            return
        else:
            if self.body_buffer is None:
                self.body_buffer = []
            self.body_buffer.append(data)
            self.body_buffered += len(data)
            if self.body_buffered > BODY_BUFFER_HIGH:
                self.conn.pause_reading_for_buffer()

    # -- response (from the upstream connection) ----------------------------------------------
    def on_response_head(self, status: int, head: bytes, upstream_keep: bool) -> None:
        """The upstream's response head, as it came (status line to blank line; llhttp validated it).

        Its field lines go to the client as slices of those bytes: only the hop-by-hop ones are cut
        out, and the proxy's own fields added.  A route with response filters (which edit a list of
        fields) or a Connection naming other fields takes the list of fields instead."""
        buf = head  # compiled: a C pointer to the bytes, read by the C loops of _index
        start = 0
        while buf[start] == 13 or buf[start] == 10:  # empty lines llhttp skipped before the status line
            start += 1
        end = len(head) - 2  # the blank line's CRLF
        line_end = _index(buf, head, 13, start, end)  # (llhttp let no CR stand without its LF)
        reason = buf[start + 13:line_end] if line_end > start + 13 else b""  # after "HTTP/1.1 200 "
        if status == 101:
            self._check_switch(_fields(head, line_end + 2))
        self.response_started = True
        self.status = status
        content_length = None
        chunked = False
        dated = False
        upgrade = None
        context = self.context  # (a route with filters): response filters, or fields request filters added
        filters = context is not None and (len(self.entry.response_filters) > 0 or len(context.response_headers) > 0)
        kept: list[bytes] = []  # slices of head: runs of field lines (CRLFs included) that pass unchanged
        run = pos = line_end + 2
        seen = _RESPONSE_KINDS.seen
        letters = _FIRST_LETTERS
        while pos < end:
            eol = _index(buf, head, 13, pos, end)
            colon = _index(buf, head, 58, pos, eol)
            # only names with the length and first letter of one of the fields below are looked at
            length = colon - pos
            if length < _LONGEST_SPECIAL and letters[length * 256 + (buf[pos] | 0x20)]:
                name = buf[pos:colon]
                kind = seen.get(name, UNSEEN)
                if kind is UNSEEN:
                    kind = _RESPONSE_KINDS.learn(name)
                if kind is not None:
                    value_start, value_end = colon + 1, eol
                    while buf[value_start] == 32 or buf[value_start] == 9:
                        value_start += 1
                    while value_end > value_start and (buf[value_end - 1] == 32 or buf[value_end - 1] == 9):
                        value_end -= 1
                    if kind == _DATE:
                        dated = True
                    elif kind == _CONTENT_LENGTH:
                        content_length = buf[value_start:value_end]
                        if status == 204:  # RFC 9110 §8.6: none in a 204
                            kind = _DROP
                    elif kind == _CONNECTION:
                        if connection_named(buf[value_start:value_end]) or filters:
                            self._rebuilt_head(status, reason, head, line_end + 2)
                            return
                    elif kind == _TRANSFER_ENCODING:
                        chunked = True
                    elif kind == _UPGRADE:
                        upgrade = buf[value_start:value_end]
                    if kind != _DATE and kind != _CONTENT_LENGTH:  # hop-by-hop: cut out of the run
                        if run < pos:
                            kept.append(buf[run:pos])
                        run = eol + 2
            pos = eol + 2
        if filters:
            self._rebuilt_head(status, reason, head, line_end + 2)
            return
        if run < end:
            kept.append(buf[run:end])
        self._write_head(status, reason, kept, dated, content_length, chunked, upgrade)

    def _rebuilt_head(self, status: int, reason: bytes, head: bytes, fields_start: int) -> None:
        """on_response_head for a route with response filters, or a Connection naming other fields:
        the fields as a list the filters may edit, every hop-by-hop one taken out."""
        content_length = None
        chunked = False
        dated = False
        named: frozenset[bytes] | None = None
        upgrade = None
        fields: list[tuple[bytes, bytes]] = []
        for name, value in _fields(head, fields_start):
            kind = _RESPONSE_SPECIAL.get(name.lower())
            if kind is None:
                fields.append((name, value))
            elif kind == _DATE:
                fields.append((name, value))
                dated = True
            elif kind == _CONTENT_LENGTH:
                content_length = value
            elif kind == _TRANSFER_ENCODING:
                chunked = True
            elif kind == _CONNECTION:
                extra = connection_named(value)
                if extra:
                    named = named | extra if named else extra
            elif kind == _UPGRADE:
                upgrade = value
        if named:
            fields = [(n, v) for (n, v) in fields if n.lower() not in named]
        context = self.context
        if context is not None:
            for response_filter in self.entry.response_filters:
                response_filter.on_response_head(context, status, fields)
            fields += context.response_headers
        if content_length is not None and status != 204:
            fields.append((b"Content-Length", content_length))
        kept = [b"".join([part for name, value in fields for part in (name, b": ", value, b"\r\n")])]
        self._write_head(status, reason, kept, dated, content_length, chunked, upgrade)

    def _write_head(self, status: int, reason: bytes, kept: list[bytes], dated: bool,
                    content_length: bytes | None, chunked: bool, upgrade: bytes | None) -> None:
        """The client's response head: status line, the ``kept`` runs of field lines (Content-Length
        among them, when the response has one), then the proxy's fields and the framing for this client."""
        line = status_line(status, reason)
        parts = [line] if dated else [line, date_header()]  # RFC 9110 §6.6.1: a response has a Date
        parts += kept
        snapshot = self.snapshot
        if snapshot.via:
            parts.append(snapshot.via_field)
        if snapshot.request_id_header:
            parts.append(snapshot.request_id_prefix)
            parts.append(self.request_id)
            parts.append(b"\r\n")
        head = self.head
        if status == 101:
            # the protocols _check_switch accepted, without the empty list elements RFC 9110 §5.6.1
            # lets an upstream send ("Upgrade: , websocket"): a WebSocket client wants the token alone
            upgrade = b", ".join([token.strip() for token in upgrade.split(b",") if token.strip()])
            parts += (b"Connection: upgrade\r\nUpgrade: ", upgrade, b"\r\n\r\n")
            self.out.append(join(parts))
            return
        if content_length is None and not (self.head_only or status == 204 or status == 304):
            self.close_delimited_upstream = not chunked
            if head.version == b"1.1":
                self.out_chunked = True
                parts.append(b"Transfer-Encoding: chunked\r\n")
            else:
                self.keep_alive = False  # HTTP/1.0 client: the close delimits the body
        if self.conn.closing:
            self.keep_alive = False
        if not self.keep_alive:
            parts.append(b"Connection: close\r\n")
        elif head.version == b"1.0":
            parts.append(b"Connection: keep-alive\r\n")
        parts.append(b"\r\n")
        self.out.append(join(parts))

    def _check_switch(self, headers: list[tuple[bytes, bytes]]) -> None:
        """A 101 is tunnelled only to a protocol the client asked for and the route allows."""
        asked = self.head.upgrade
        switched = [value for name, value in headers if name.lower() == b"upgrade"]
        connection = [token for name, value in headers if name.lower() == b"connection"
                      for token in connection_tokens(value)]
        if asked is None or len(switched) != 1 or not upgrade_protocols(switched[0]) \
                or not set(upgrade_protocols(switched[0])) <= set(upgrade_protocols(asked)) \
                or b"upgrade" not in connection:  # (without it llhttp, as any client, does not switch)
            raise UpstreamError(502, "upstream_bad_upgrade",
                                "upstream switched protocols without a matching request")

    def on_response_body(self, data: bytes) -> None:
        if self.out_chunked:
            self.out += (b"%x\r\n" % len(data), data, b"\r\n")
        else:
            self.out.append(data)

    def flush(self) -> None:
        out = self.out
        if out:
            data = out[0] if len(out) == 1 else join(out)
            self.bytes_out += len(data)
            self.conn.write(data)
            out.clear()

    def on_response_end(self) -> None:
        # Let go of the upstream before the last write: that write may fill the client's buffer,
        # and pause_writing must not pause a connection that is already back in the pool.
        self.upstream = None
        if self.out_chunked:
            self.out.append(LAST_CHUNK)
        self.flush()
        self._finished()

    def on_upstream_upgraded(self, upstream: "UpstreamConnection", rest: bytes) -> None:
        self.flush()
        self.upstream = None
        self.done = True
        self._account()
        self.conn.start_tunnel(self, upstream, rest)

    def on_upstream_error(self, error: GatewayError) -> None:
        if self.done:
            return
        target = self.target
        if isinstance(error, UpstreamError) and not error.logged:  # like nginx's error_log: a line per failure
            log.warning("%s %s: upstream %s failed (%s: %s)%s",
                        self.head.method.decode("latin-1") if self.head else "-",
                        self.upstream_path.decode("latin-1", "replace"), target.address if target else "-", error.kind,
                        error.message, " after the response began" if self.response_started else "")
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            upstream.close()
        if self.response_started:
            self.flush()
            self.done = True
            self._account()
            self.conn.abort_exchange(self)
            return
        self.out.clear()
        self.respond_error(error)

    def on_upstream_lost(self, upstream: "UpstreamConnection", exc: Exception | None) -> None:
        """The upstream connection closed before the response completed."""
        self.upstream = None
        if self.done:
            return
        stale_reuse = upstream.requests > 1 and not upstream.got_response and not self.body_sent
        if not self.response_started and stale_reuse and self.tries < 2:
            self.tries += 1  # the request never reached a live upstream: it is safe to send it again
            self._connect_or_reuse()
            return
        self.on_upstream_error(UpstreamError(502, "upstream_reset", "upstream closed the connection"))

    # -- local answers -----------------------------------------------------------------------
    def respond_local(self, reply: LocalReply) -> None:
        context = self.context
        if context is not None and context.response_headers:
            reply = LocalReply(reply.status, [*reply.headers, *context.response_headers], reply.body)
        self.status = reply.status
        self._settle_unread_body()
        data = reply.render(keep_alive=self.keep_alive, head_only=self.head_only, request_id=self.request_id,
                            request_id_header=self.snapshot.request_id_header)
        self.bytes_out += len(data)
        self.conn.write(data)
        self._finished()

    def respond_error(self, error: GatewayError) -> None:
        self.status = error.status
        if self.head is None or error.status in (400, 408, 413, 414, 431, 501, 505):
            self.keep_alive = False  # framing is unknown or the client is over a limit
        self._settle_unread_body()
        data = error_response(error, self.request_id, keep_alive=self.keep_alive, head_only=self.head_only,
                              request_id_header=self.snapshot.request_id_header)
        self.bytes_out += len(data)
        self.conn.write(data)
        self._finished()

    def _settle_unread_body(self) -> None:
        """Answering before the request body was read: drop a small rest, else close afterwards."""
        head = self.head
        if self.request_done or head is None or not head.has_body:
            if head is not None and head.upgrade is not None:
                self.keep_alive = False  # the client's parser switched protocols: no further requests
            return
        if head.expect_continue and not self.continue_sent:
            self.keep_alive = False  # the client may or may not send the body now: framing is unknown
        elif head.chunked or head.content_length > DISCARD_LIMIT:
            self.keep_alive = False
        self.discard_body = True
        self.body_buffer = None
        self.conn.resume_reading_for_buffer()

    def _finished(self) -> None:
        self.done = True
        self._account()
        if not self.request_done and not self.discard_body and (self.head is None or self.head.has_body):
            self.keep_alive = False  # answered early: the rest of the request body stays unread
        self.conn.exchange_done(self)

    def abort(self) -> None:
        """The client connection is gone."""
        self.done = True
        if self.started >= 0 and self.head is not None:
            self.status = 499  # as nginx logs it: the client closed before the response was complete
            self._account()
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            upstream.abort()  # mid-exchange: this connection cannot be reused

    def _account(self) -> None:
        """Count this exchange once in the worker's shared-memory metrics slot."""
        if self.started < 0:
            return
        metrics = self.conn.state.metrics
        if metrics is not None:
            if self.inflight_slot >= 0:
                metrics.inflight_add(self.inflight_slot, -1)
                self.inflight_slot = -1
            entry = self.entry
            metrics.record(entry.route.metric_slot if entry is not None else 0, self.status,
                           self.conn.state.clock() - self.started, self.bytes_in, self.bytes_out)
        self.started = -1.0


def _fields(head: bytes, start: int) -> list[tuple[bytes, bytes]]:
    """The (name, value) fields of a response head validated by llhttp, from ``start`` (after the
    status line) to the blank line; values without their surrounding whitespace."""
    fields = []
    for line in head[start:len(head) - 4].split(b"\r\n") if len(head) - 4 > start else ():
        name, _, value = line.partition(b":")
        fields.append((name, value.strip(b" \t")))
    return fields


#: compiled, _index is libc's memchr (bytescan.pxd); the pure build asks bytes.find
_COMPILED = not __file__.endswith(".py")


def _index(buf: bytes, head: bytes, byte: int, start: int, end: int) -> int:
    """Where ``byte`` first occurs in ``head[start:end]`` (``buf`` is ``head``), or ``end``."""
    if _COMPILED:
        return index_of(buf, byte, start, end)  # noqa: F821 - bytescan.pxd, compiled build only
    found = head.find(byte, start, end)
    return found if found >= 0 else end
