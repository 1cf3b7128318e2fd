"""Sans-IO request reader: bytes in, request events out, every framing rule of RFC 9112 enforced.

httptools (llhttp) already rejects the classic smuggling vectors: Content-Length together with
Transfer-Encoding, duplicate or non-numeric Content-Length, bad chunk sizes, obs-fold, bare CR/LF and
control characters in field values.  This layer adds what llhttp leaves to the application: Host
rules, size limits (414/431/413), transfer-codings we cannot forward (501), unsupported Expect (417),
HTTP/0.9 and other versions (505), and the classification of every header into "forward as is" or
"handled by the proxy" — done once, while parsing, so later phases never re-scan the header list.

The handler receives, in order, for every request: ``on_request_head(head)``, zero or more
``on_request_body(bytes)``, then ``on_request_end()``; after a request that switched protocols,
``on_request_upgrade(rest)`` with the bytes that followed the head.  Any rule violation raises
:class:`~litemesh.errors.ClientError` out of :meth:`RequestReader.feed`; the reader is then unusable
(the connection must answer and close, since request boundaries are lost).

Three things llhttp does not do the way a gateway needs, and how they are bridged here:

* **Extension methods.**  llhttp knows a fixed list of methods (WebDAV, PURGE, QUERY, ... included)
  and rejects any other token.  RFC 9110 §9.1 lets clients use any token, and a gateway must not
  block them: when a request that starts a read fails on its method, the method is checked to be a
  token and the request is parsed again with a stand-in method, the real one restored in the head.
  Where the request's position in the stream is unknown (pipelined behind another in one read) the
  answer is 501, never 400.
* **Declared chunk sizes.**  llhttp hands us chunk data, not chunk sizes.  The data of a chunk is
  held back while the read that carried its size line is parsed; at the end of that read the size
  line is found again in the raw bytes (it ends exactly where the held data starts) and a chunk
  that alone would take the body over ``max_body_size`` is refused with 413 before any of it is
  forwarded.  Only chunked requests under a body limit pay for this.
* **Upgrade requests with a body.**  llhttp skips the body of any request that asks to switch
  protocols and reports everything after the head as the new protocol.  Such a request is never
  upgraded here: the parser is restarted on a stand-in head with the same framing, so the declared
  body is delivered as body and only what follows it is parsed as the next request.
"""
from __future__ import annotations

import re
from typing import Protocol

import httptools

from ..errors import ClientError, GatewayError, bad_request
from .headers import UNSEEN, FieldKinds, connection_tokens, routing_host, valid_request_id


class RequestHead:
    """One parsed request head.  ``headers`` holds only end-to-end fields, in the client's order."""

    __slots__ = (
        "method", "target", "version", "headers", "host", "content_length", "chunked", "keep_alive",
        "expect_continue", "upgrade", "connection", "forwarded_for", "forwarded_proto", "forwarded_host",
        "forwarded", "via", "request_id", "route_host",
    )

    def __init__(self) -> None:
        self.method = b""
        self.target = b""
        self.version = b"1.1"
        self.headers: list[tuple[bytes, bytes]] = []
        self.host: bytes | None = None
        self.content_length = -1  # -1: none given
        self.chunked = False
        self.keep_alive = True
        self.expect_continue = False
        self.upgrade: bytes | None = None  # the Upgrade value when the client asked to switch protocols
        self.connection: list[bytes] | None = None  # Connection tokens, lowercase
        self.forwarded_for: bytes | None = None
        self.forwarded_proto: bytes | None = None
        self.forwarded_host: bytes | None = None
        self.forwarded: bytes | None = None  # RFC 7239 Forwarded, all lines joined
        self.via: bytes | None = None
        self.request_id: bytes | None = None  # the client's id, kept only if valid
        self.route_host = ""  # lowercase Host without port, for routing

    @property
    def has_body(self) -> bool:
        return self.chunked or self.content_length > 0


class RequestHandler(Protocol):
    def on_request_head(self, head: RequestHead) -> None: ...
    def on_request_body(self, data: bytes) -> None: ...
    def on_request_end(self) -> None: ...
    def on_request_upgrade(self, rest: bytes) -> None: ...


class ReaderLimits:
    __slots__ = ("max_request_line", "max_header_size", "max_headers", "max_body_size")

    def __init__(self, max_request_line: int = 8192, max_header_size: int = 32768, max_headers: int = 100,
                 max_body_size: int = 64 << 20) -> None:
        self.max_request_line = max_request_line
        self.max_header_size = max_header_size
        self.max_headers = max_headers
        self.max_body_size = max_body_size  # 0 = unlimited


# What to do with a header, by lowercase name.  Absent names are forwarded untouched.
_DROP = 0  # hop-by-hop or re-generated by the proxy
_HOST, _CONTENT_LENGTH, _TRANSFER_ENCODING, _CONNECTION, _UPGRADE, _EXPECT = 1, 2, 3, 4, 5, 6
_XFF, _XFPROTO, _XFHOST, _VIA, _REQUEST_ID, _FORWARDED = 7, 8, 9, 10, 11, 12
_BASE_SPECIAL: dict[bytes, int] = {
    b"host": _HOST, b"content-length": _CONTENT_LENGTH, b"transfer-encoding": _TRANSFER_ENCODING,
    b"connection": _CONNECTION, b"upgrade": _UPGRADE, b"expect": _EXPECT,
    b"x-forwarded-for": _XFF, b"x-forwarded-proto": _XFPROTO, b"x-forwarded-host": _XFHOST, b"via": _VIA,
    b"forwarded": _FORWARDED,
    # the proxy states the client address itself (exchange.py); a client's own claim never passes
    b"x-real-ip": _DROP,
    b"keep-alive": _DROP, b"proxy-connection": _DROP, b"te": _DROP, b"trailer": _DROP,
    b"proxy-authorization": _DROP, b"proxy-authenticate": _DROP,
}

#: RFC 9110 §5.6.2 token: what a request method may be
_METHOD_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}")
_REQUEST_LINE = re.compile(rb"(?:^|\n)([!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}) [^ \r\n]+ HTTP/[0-9]\.[0-9]\r\n")
#: the method llhttp parses in place of an extension method it does not know (the framing of a
#: request does not depend on its method, except CONNECT and HEAD responses)
_STAND_IN_METHOD = b"GET"
#: how far back a chunk-size line is looked for across reads (digits plus extensions)
_SIZE_LINE_WINDOW = 1024
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
#: Allow for the methods a reverse proxy never forwards (RFC 9110 §15.5.6 requires the field)
ALLOW = ((b"Allow", b"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),)


class _Discard:
    """Handler for the stand-in head that restarts parsing of an upgrade request's body."""

    def on_request_head(self, head: "RequestHead") -> None:
        pass


_KINDS_BY_REQUEST_ID: dict[bytes, FieldKinds] = {}


def _field_kinds(request_id_header: bytes) -> FieldKinds:
    """One shared classifier per request-id header name (its memo is warm for every connection)."""
    kinds = _KINDS_BY_REQUEST_ID.get(request_id_header)
    if kinds is None:
        table = dict(_BASE_SPECIAL)
        table[request_id_header] = _REQUEST_ID
        kinds = _KINDS_BY_REQUEST_ID[request_id_header] = FieldKinds(table)
    return kinds


_KNOWN_METHODS: dict[bytes, bool] = {}


def _llhttp_knows(method: bytes) -> bool:
    """Whether llhttp parses ``method`` (asked of llhttp itself, memoized; error path only)."""
    known = _KNOWN_METHODS.get(method)
    if known is None:
        try:
            httptools.HttpRequestParser(_Discard()).feed_data(method + b" / HTTP/1.1\r\n")
            known = True
        except httptools.HttpParserError:
            known = False
        if len(_KNOWN_METHODS) < 256:
            _KNOWN_METHODS[method] = known
    return known


def _hex_value(digits: bytes) -> int:
    """A chunk size llhttp has accepted, computed by hand: wire numbers never go through int()."""
    total = 0
    for byte in digits:
        total = total * 16 + (byte - 48 if byte <= 57 else (byte | 0x20) - 87)
    return total


def _too_large(message: str) -> ClientError:
    return ClientError(431, "headers_too_large", message)


def _body_too_large() -> ClientError:
    return ClientError(413, "payload_too_large", "request body too large")


def _parse_error(reason: str) -> ClientError:
    """llhttp's own wording stays inside: the client learns what kind of rule it broke."""
    lowered = reason.lower()
    if "http/2" in lowered or "pri/" in lowered:  # a prior-knowledge HTTP/2 preface
        return ClientError(505, "version_not_supported", "HTTP version not supported")
    if "chunk size overflow" in lowered:
        return _body_too_large()
    for needle, message in _PARSE_ERRORS:
        if needle in lowered:
            return bad_request(message)
    return bad_request("malformed request")


_PARSE_ERRORS = (
    ("chunk", "invalid chunked framing"),
    ("content-length", "invalid Content-Length"),
    ("transfer-encoding", "invalid Transfer-Encoding"),
    ("version", "invalid HTTP version"),
    ("header", "invalid header field"),
    ("url", "invalid request target"),
)


class RequestReader:
    """Feeds bytes to httptools and turns its callbacks into validated request events."""

    __slots__ = (
        "_handler", "_parser", "_limits", "_special", "_head", "_in_head", "_url_len", "_header_count",
        "_header_bytes", "_cont_bytes", "_began_now", "_body_bytes", "_trailers", "_max_head",
        "_in_chunked", "_body_now", "_framing_bytes", "_idle", "_idle_at_feed", "_extension_method",
        "_upgrade_body", "_held", "_held_now", "_tail",
    )

    def __init__(self, handler: RequestHandler, limits: ReaderLimits | None = None,
                 request_id_header: bytes = b"x-request-id") -> None:
        self._handler = handler
        self._parser = httptools.HttpRequestParser(self)
        self._limits = limits or ReaderLimits()
        self._special = _field_kinds(request_id_header.lower())
        self._head: RequestHead | None = None
        self._in_head = False
        self._url_len = 0
        self._header_count = 0
        self._header_bytes = 0
        self._cont_bytes = 0
        self._began_now = False
        self._body_bytes = 0
        self._trailers = False
        self._in_chunked = False  # inside a chunked body or its trailer section
        self._body_now = False  # on_body ran during the current feed
        self._framing_bytes = 0  # bytes fed since the last body byte of a chunked message
        self._idle = True  # between two messages
        self._idle_at_feed = True  # ... when the current feed began
        self._extension_method: bytes | None = None  # the real method of a request parsed with a stand-in
        self._upgrade_body = False  # an upgrade request with a body: parse the body, never switch
        self._held: list[bytes] | None = None  # data of a chunk whose declared size is not checked yet
        self._held_now = 0  # bytes of _held that came in the current feed
        self._tail = b""  # the last bytes of the previous feed of a chunked message
        # Bytes a head may span beyond what the callbacks account for (a field httptools is still
        # accumulating); bounds memory against endless header lines.
        self._max_head = self._limits.max_request_line + self._limits.max_header_size + 4096

    @property
    def in_head(self) -> bool:
        """True between the first byte of a request and the end of its head."""
        return self._in_head

    def feed(self, data: bytes) -> None:
        """Parse ``data``; raises :class:`ClientError` on any violation."""
        self._began_now = 0
        self._body_now = False
        self._idle_at_feed = self._idle
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._switch_or_continue(data, upgrade.args[0])
            return
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, GatewayError):
                raise cause from None
            raise
        except httptools.HttpParserInvalidMethodError:
            self._reparse_extension_method(data)
            return
        except httptools.HttpParserInvalidURLError:
            raise bad_request("invalid request target") from None
        except httptools.HttpParserError as exc:
            raise _parse_error(str(exc)) from None
        if self._held is not None:
            self._check_declared_chunk(data)
        if self._in_head:
            self._check_partial_head(len(data))
        elif self._in_chunked:
            self._check_chunk_framing(len(data))
            self._tail = data[-_SIZE_LINE_WINDOW:] if len(data) >= _SIZE_LINE_WINDOW \
                else (self._tail + data)[-_SIZE_LINE_WINDOW:]

    def _reparse_extension_method(self, data: bytes) -> None:
        """llhttp refused the method.  A token is a valid extension method: parse the request again
        with a stand-in method llhttp knows, and give the head the real one."""
        if not (self._idle_at_feed and self._began_now == 1):
            # The request began after another one in this read, or in an earlier read: its first
            # byte cannot be located, so it cannot be parsed again.  A well-formed request line
            # is an extension method we cannot parse (501); anything else is garbage (400).
            if any(not _llhttp_knows(line.group(1)) for line in _REQUEST_LINE.finditer(data)):
                raise ClientError(501, "not_implemented", "request method not implemented")
            raise bad_request("invalid request method")
        start = len(data) - len(data.lstrip(b"\r\n"))  # llhttp skips empty lines between requests
        space = data.find(b" ", start, start + 65)
        method = data[start:space] if space > start else b""
        if _METHOD_TOKEN.fullmatch(method) is None:
            raise bad_request("invalid request method")
        self._parser = httptools.HttpRequestParser(self)
        self._idle = True
        self._extension_method = method
        self.feed(_STAND_IN_METHOD + data[space:])

    def _switch_or_continue(self, data: bytes, offset: int) -> None:
        """llhttp stopped after the head of a request asking to switch protocols."""
        if not self._upgrade_body:
            self._handler.on_request_upgrade(data[offset:])
            return
        # The request has a body, so it is not switched (see the module docstring): restart the
        # parser on a stand-in head with the same framing, then parse the body and what follows.
        head = self._head
        self._upgrade_body = False
        self._parser = httptools.HttpRequestParser(self)
        handler, self._handler = self._handler, _Discard()
        framing = b"Transfer-Encoding: chunked" if head.chunked else b"Content-Length: %d" % head.content_length
        try:
            self._parser.feed_data(b"POST / HTTP/1.1\r\nHost: a\r\n" + framing + b"\r\n\r\n")
        finally:
            self._handler = handler
        self._head = head
        self.feed(data[offset:])

    def _check_declared_chunk(self, data: bytes) -> None:
        """The end of a read left a chunk whose size line came in it: refuse the chunk if its
        declared size takes the body over the limit, else release its held data."""
        held = self._held
        end = len(data) - self._held_now  # where the chunk-size line ends in ``data``
        if end >= _SIZE_LINE_WINDOW:
            window = data[end - _SIZE_LINE_WINDOW:end]
        else:
            window = (self._tail + data[:end])[-_SIZE_LINE_WINDOW:]
        self._held_now = 0
        start = window.rfind(b"\n", 0, len(window) - 1) + 1
        line = window[start:].rstrip(b"\r\n").split(b";", 1)[0]
        if not window.endswith(b"\n") or (line and not _HEX_DIGITS.issuperset(line)):
            return  # after the last chunk, in the trailer section: no chunk data to hold
        if not start and len(window) == _SIZE_LINE_WINDOW:
            if held:
                raise bad_request("chunk extensions too long")
            return  # undecided until data of the chunk arrives
        limit = self._limits.max_body_size
        if line and self._body_bytes - sum(map(len, held)) + _hex_value(line) > limit:
            raise _body_too_large()
        self._held = None
        for piece in held:
            self._handler.on_request_body(piece)

    def _check_partial_head(self, fed: int) -> None:
        # A chunk that ended inside a head is head bytes entirely, unless the head began in it.
        # An over-long target raised 414 in on_url already, so what overflows here is header data.
        if not self._began_now:
            self._cont_bytes += fed
        if self._cont_bytes > self._max_head:
            raise _too_large("request head too large")

    def _check_chunk_framing(self, fed: int) -> None:
        # httptools buffers an unfinished trailer field, and chunk extensions cost parse time: bytes
        # of a chunked message that carry no body data are bounded like a head.
        if self._body_now:
            self._framing_bytes = 0
            return
        self._framing_bytes += fed
        if self._framing_bytes > self._max_head:
            raise _too_large("chunk framing or trailer section too large")

    # -- httptools callbacks -------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._head = RequestHead()
        self._in_head = True
        self._idle = False
        self._began_now += 1
        self._url_len = 0
        self._header_count = 0
        self._header_bytes = 0
        self._cont_bytes = 0
        self._body_bytes = 0
        self._trailers = False

    def on_url(self, url: bytes) -> None:
        self._url_len += len(url)
        if self._url_len > self._limits.max_request_line:
            raise ClientError(414, "uri_too_long", "request target too long")
        head = self._head
        head.target = head.target + url if head.target else url

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._trailers:  # trailer fields are not forwarded (we re-chunk bodies)
            self._header_bytes += len(name) + len(value) + 4
            if self._header_bytes > self._limits.max_header_size:
                raise _too_large("trailer section too large")
            return
        self._header_count += 1
        self._header_bytes += len(name) + len(value) + 4
        if self._header_count > self._limits.max_headers:
            raise _too_large("too many header fields")
        if self._header_bytes > self._limits.max_header_size:
            raise _too_large("header fields too large")
        kind = self._special.seen.get(name, UNSEEN)
        if kind is UNSEEN:
            kind = self._special.learn(name)
        if kind is None:
            self._head.headers.append((name, value))
        elif kind:
            self._special_header(kind, name, value)

    def _special_header(self, kind: int, name: bytes, value: bytes) -> None:
        head = self._head
        if kind == _HOST:
            if head.host is not None:
                raise bad_request("multiple Host headers")
            head.host = value
        elif kind == _CONTENT_LENGTH:
            head.content_length = _content_length(value)
        elif kind == _TRANSFER_ENCODING:
            # llhttp only accepts codings ending in "chunked"; we cannot forward any other coding.
            if value.strip().lower() != b"chunked":
                raise ClientError(501, "not_implemented", "unsupported transfer-coding")
            head.chunked = True
        elif kind == _CONNECTION:
            head.connection = (head.connection or []) + connection_tokens(value)
        elif kind == _UPGRADE:
            head.upgrade = value
        elif kind == _EXPECT:
            if value.strip().lower() != b"100-continue":
                raise ClientError(417, "expectation_failed", "unsupported expectation")
            head.expect_continue = True
        elif kind == _XFF:
            head.forwarded_for = value if head.forwarded_for is None else head.forwarded_for + b", " + value
        elif kind == _XFPROTO:
            head.forwarded_proto = value
        elif kind == _XFHOST:
            head.forwarded_host = value
        elif kind == _VIA:
            head.via = value if head.via is None else head.via + b", " + value
        elif kind == _FORWARDED:
            head.forwarded = value if head.forwarded is None else head.forwarded + b", " + value
        elif kind == _REQUEST_ID:
            if head.request_id is None and valid_request_id(value):
                head.request_id = value

    def on_headers_complete(self) -> None:
        head = self._head
        parser = self._parser
        version = parser.get_http_version()
        if version == "1.1":
            if head.host is None:
                raise bad_request("missing Host header")
        elif version == "1.0":
            head.version = b"1.0"
        elif version == "0.9" and not self._header_count:  # llhttp's reading of a line without a version
            raise bad_request("missing HTTP version")
        else:
            raise ClientError(505, "version_not_supported", "HTTP version not supported")
        if head.host is not None:
            route_host = routing_host(head.host)
            if route_host is None:
                raise bad_request("invalid Host header")
            head.route_host = route_host
        method = self._extension_method
        if method is None:
            method = parser.get_method()
            if method == b"CONNECT":  # tunnels to arbitrary hosts are not a reverse proxy's job
                raise ClientError(405, "method_not_allowed", "CONNECT is not supported", headers=ALLOW)
        else:
            self._extension_method = None
        head.method = method
        head.keep_alive = parser.should_keep_alive()
        if head.connection is not None:
            self._drop_connection_named(head)
        if not head.target or not (head.target[0] == 47 or head.target == b"*" or head.target[:4].lower() == b"http"):
            raise bad_request("invalid request target")
        limit = self._limits.max_body_size
        if limit and head.content_length > limit:
            raise ClientError(413, "payload_too_large", "request body too large")
        if head.upgrade is not None:  # llhttp switches on the same rule: Upgrade + "Connection: upgrade"
            if head.connection is None or b"upgrade" not in head.connection:
                head.upgrade = None  # Upgrade without "Connection: upgrade" is just a hop-by-hop field
            elif head.has_body:
                head.upgrade = None  # see the module docstring: the body is parsed, no switch happens
                self._upgrade_body = True
        self._in_head = False
        self._trailers = True  # any further on_header calls for this message are chunked trailers
        self._header_bytes = 0
        self._in_chunked = head.chunked
        self._framing_bytes = 0
        self._handler.on_request_head(head)

    def _drop_connection_named(self, head: RequestHead) -> None:
        """RFC 9110 §7.6.1: fields named in Connection are hop-by-hop too."""
        named = set(head.connection)
        named.discard(b"close")
        named.discard(b"keep-alive")
        named.discard(b"upgrade")
        if named:
            head.headers = [(n, v) for (n, v) in head.headers if n.lower() not in named]

    def on_body(self, body: bytes) -> None:
        self._body_now = True
        limit = self._limits.max_body_size
        if limit:
            self._body_bytes += len(body)
            if self._body_bytes > limit:
                raise _body_too_large()
        held = self._held
        if held is not None:
            held.append(body)
            self._held_now += len(body)
            return
        self._handler.on_request_body(body)

    def on_chunk_header(self) -> None:
        if self._limits.max_body_size:
            self._held = []  # until the declared size is checked (or the chunk completes in this read)
            self._held_now = 0

    def on_chunk_complete(self) -> None:
        held = self._held
        if held is not None:  # the chunk ended within this read: on_body has checked every byte of it
            self._held = None
            for piece in held:
                self._handler.on_request_body(piece)

    def on_message_complete(self) -> None:
        self._in_chunked = False
        self._idle = True
        if self._upgrade_body:
            return  # llhttp ends an upgrade request at its head: the body is still to come
        self._handler.on_request_end()


def _content_length(value: bytes) -> int:
    """Content-Length without int(): llhttp has checked digits only; we still refuse anything else."""
    value = value.strip()
    if not value or len(value) > 18:
        raise bad_request("invalid Content-Length")
    total = 0
    for byte in value:
        if not 48 <= byte <= 57:
            raise bad_request("invalid Content-Length")
        total = total * 10 + (byte - 48)
    return total
