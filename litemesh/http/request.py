"""Sans-IO request reader: bytes in, request events out, every framing rule of RFC 9112 enforced.

Theory of operation.  The reader frames the byte stream itself and uses httptools (llhttp) to
validate each request head:

* **Heads** are cut at their blank line (``CRLF CRLF``; llhttp is strict, so there is no other
  spelling) and only a whole head is handed to llhttp, which rejects the classic smuggling vectors:
  Content-Length with Transfer-Encoding, duplicate or non-numeric Content-Length, obs-fold, bare
  CR/LF and control characters in fields.  A head's size is measured on its bytes, whether it came
  in one read or in a thousand: a head longer than ``max_request_line + max_header_size + 4 KiB``
  is refused (414 while no line has ended yet, else 431) before any of it is parsed.
* **Content-Length bodies** go through llhttp, exactly as many bytes as declared.
* **Chunked bodies** are decoded by :class:`~litemesh.http.chunked.ChunkedDecoder`, which sees
  each declared chunk size (a chunk that alone takes the body over ``max_body_size`` is refused with
  413 before any byte of it is forwarded) and bounds size lines and trailers on their bytes.

So every limit depends on the bytes, never on how they were split into reads, and every message's
first byte is known: a request whose method llhttp does not know (RFC 9110 §9.1 lets clients use any
token: WebDAV, PURGE, QUERY and custom methods must pass) is parsed again with a stand-in method
and the real one restored in the head.  A request that asks to switch protocols but has a body
(llhttp would skip the body and call it the new protocol) keeps its body and is never switched.

This layer also adds what llhttp leaves to the application: Host rules, the request line limit
(414), transfer-codings we cannot forward (501), unsupported Expect (417), a missing version (400)
and other versions (505), CONNECT (405), and the classification of every header into "forward as
is" or "handled by the proxy" — done once, while parsing, so later phases never re-scan the list.

The handler receives, in order, for every request: ``on_request_head(head)``, zero or more
``on_request_body(bytes)``, then ``on_request_end()``; after a request that switched protocols,
``on_request_upgrade(rest)`` with the bytes that followed the head.  Any rule violation raises
:class:`~litemesh.errors.ClientError` out of :meth:`RequestReader.feed`; the reader is then unusable
(the connection must answer and close, since request boundaries are lost).
"""
from __future__ import annotations

import re

import httptools

from ..errors import ClientError, GatewayError, bad_request
from .chunked import ChunkedDecoder
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


class RequestHandler:
    """What a reader reports to (compiled, a cdef class: the reader's calls are C calls)."""

    __slots__ = ()

    def on_request_head(self, head: RequestHead) -> None:
        raise NotImplementedError

    def on_request_body(self, data: bytes) -> None:
        raise NotImplementedError

    def on_request_end(self) -> None:
        raise NotImplementedError

    def on_request_upgrade(self, rest: bytes) -> None:
        raise NotImplementedError


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
#: lowercase names of the request fields the gateway sets or drops itself (the default request-id
#: field among them): never in ``RequestHead.headers``, and filters may not add them
GATEWAY_OWNED_FIELDS = frozenset(_BASE_SPECIAL) | {b"x-request-id"}

#: RFC 9110 §5.6.2 token: what a request method may be
_METHOD_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}")
#: the method llhttp parses in place of an extension method it does not know (the framing of a
#: request does not depend on its method, except CONNECT and HEAD responses)
_STAND_IN_METHOD = b"GET"
#: room in the request line for the method (a token of up to 64 bytes), its spaces and the version
_LINE_SLACK = 96
#: what llhttp raises when it stops in a head (HttpParserUpgrade is not an HttpParserError)
_PARSER_STOPPED = (httptools.HttpParserError, httptools.HttpParserUpgrade)
_PENDING: bytes = object()  # type: ignore[assignment]  # _extension_method while a method's name still arrives
#: Allow for the methods a reverse proxy never forwards (RFC 9110 §15.5.6 requires the field)
ALLOW = ((b"Allow", b"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),)


_KINDS_BY_REQUEST_ID: dict[bytes, FieldKinds] = {}


def _field_kinds(request_id_header: bytes) -> FieldKinds:
    """One shared classifier per request-id header name (its memo is warm for every connection)."""
    kinds = _KINDS_BY_REQUEST_ID.get(request_id_header)
    if kinds is None:
        table = dict(_BASE_SPECIAL)
        table[request_id_header] = _REQUEST_ID
        kinds = _KINDS_BY_REQUEST_ID[request_id_header] = FieldKinds(table)
    return kinds


def _too_large(message: str) -> ClientError:
    return ClientError(431, "headers_too_large", message)


def _body_too_large() -> ClientError:
    return ClientError(413, "payload_too_large", "request body too large")


def _terminator_overlap(tail: bytes) -> int:
    """How much of the blank line (CRLF CRLF) the last bytes of an unfinished head already hold."""
    for size in (3, 2, 1):
        if tail.endswith(b"\r\n\r\n"[:size]):
            return size
    return 0


def _reader_error(exc: Exception) -> ClientError:
    """The ClientError for an httptools exception raised while parsing a head or a body piece."""
    if isinstance(exc, httptools.HttpParserCallbackError):
        cause = exc.__context__
        if isinstance(cause, GatewayError):
            return cause  # type: ignore[return-value]
        raise exc  # a bug in a callback of ours: the connection answers 500
    if isinstance(exc, httptools.HttpParserInvalidURLError):
        return bad_request("invalid request target")
    if isinstance(exc, httptools.HttpParserInvalidMethodError):
        return bad_request("invalid request method")
    return _parse_error(str(exc))


def _parse_error(reason: str) -> ClientError:
    """llhttp's own wording stays inside: the client learns what kind of rule it broke."""
    lowered = reason.lower()
    if "http/2" in lowered or "pri/" in lowered:  # a prior-knowledge HTTP/2 preface
        return ClientError(505, "version_not_supported", "HTTP version not supported")
    for needle, message in _PARSE_ERRORS:
        if needle in lowered:
            return bad_request(message)
    return bad_request("malformed request")


_PARSE_ERRORS = (
    ("content-length", "invalid Content-Length"),
    ("transfer-encoding", "invalid Transfer-Encoding"),
    ("version", "invalid HTTP version"),
    ("header", "invalid header field"),
    ("url", "invalid request target"),
)


#: parsers kept for the next request of any connection (a worker reads this many heads at once at most
#: before it makes new ones)
PARSER_POOL_SIZE = 256


class ParserEvents:
    """An llhttp request parser with the object httptools reports its events to, kept in a pool.

    A reader takes one for each request and gives it back when the request ended and the parser is
    clean (ready for any connection's next message): an idle keep-alive connection holds no parser,
    which with its callbacks bound is the largest thing it would hold (~0.8 KiB).
    """

    __slots__ = ("parser", "reader")

    def __init__(self) -> None:
        self.reader: RequestReader | None = None  # the reader using the parser now
        self.parser = httptools.HttpRequestParser(self)

    def on_message_begin(self) -> None:
        self.reader.on_message_begin()

    def on_url(self, url: bytes) -> None:
        self.reader.on_url(url)

    def on_headers_complete(self) -> None:
        self.reader.on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self.reader.on_body(body)

    def on_message_complete(self) -> None:
        self.reader.on_message_complete()


_idle_parsers: list[ParserEvents] = []


# what the reader expects next; _SWITCHED: nothing more (a protocol switch, or a request after which
# the connection closes: what follows it is never parsed, as llhttp refuses it)
_HEAD, _BODY, _CHUNKED, _SWITCHED = 0, 1, 2, 3


class RequestReader:
    """Frames the byte stream into requests; httptools validates heads and parses Content-Length bodies."""

    __slots__ = (
        "_handler", "_events", "_parser", "_clean", "_limits", "_special", "_head", "_fault", "_header_count",
        "_header_bytes", "_body_bytes", "_max_head", "_max_line", "_max_target", "_state", "_have", "_parts", "_tail", "_line",
        "_remaining", "_chunked", "_extension_method", "_fresh_parser", "_http11", "_head_bytes",
    )

    def __init__(self, handler: RequestHandler, limits: ReaderLimits | None = None,
                 request_id_header: bytes = b"x-request-id") -> None:
        self._handler = handler
        # the parser of the request being read (none between requests: see ParserEvents)
        self._events: ParserEvents | None = None
        self._parser: httptools.HttpRequestParser | None = None
        self._clean = False  # the request ended and the parser is ready for another message
        self._limits = limits or ReaderLimits()
        self._special = _field_kinds(request_id_header.lower())
        self._head: RequestHead | None = None
        self._fault: ClientError | None = None  # the first rule a field of this head broke
        self._header_count = 0
        self._header_bytes = 0
        self._body_bytes = 0
        # The longest request line and head, in bytes (whitespace and line ends included), checked on
        # the bytes as they come; the target's own limit (max_request_line) is checked once parsed.
        self._max_target = self._limits.max_request_line
        self._max_line = self._max_target + _LINE_SLACK
        self._max_head = self._limits.max_request_line + self._limits.max_header_size + 4096
        self._state = _HEAD
        self._have = 0  # bytes of an unfinished head (its blank line has not arrived yet) ...
        self._parts: list[bytes] = []  # ... as they came
        self._tail = b""  # ... and its last 3 bytes
        self._line = -1  # the request line's length, once its CRLF arrived
        self._remaining = 0  # Content-Length body bytes still to come
        self._chunked: ChunkedDecoder | None = None
        self._extension_method: bytes | None = None  # the real method of a head parsed with a stand-in
        self._fresh_parser = False  # llhttp must start over at the next head (see _end_body)
        self._http11 = False  # the head being parsed is known to be HTTP/1.1 (see feed)
        # the bytes of the head llhttp is parsing (the request line to the blank line, or some of
        # it): its field lines are read from them once llhttp validated the head (on_headers_complete)
        self._head_bytes = b""

    @property
    def in_head(self) -> bool:
        """True between the first byte of a request and the end of its head."""
        return self._state == _HEAD and self._have > 0

    def feed(self, data: bytes) -> None:
        """Parse ``data``; raises :class:`ClientError` on any violation."""
        self._feed(data)
        if self._clean and self._state == _HEAD and not self._have:
            self._release_parser()  # between requests: the connection holds no parser

    def close(self) -> None:
        """The connection is gone: let go of the parser (it may be amid a message: never reused)."""
        self._drop_parser()

    # -- parsers (see ParserEvents) ---------------------------------------------------------------
    def _take_parser(self) -> None:
        idle = _idle_parsers  # (compiled: a typed list, so pop is a C call)
        events = idle.pop() if idle else ParserEvents()
        events.reader = self
        self._events = events
        self._parser = events.parser

    def _release_parser(self) -> None:
        """Back to the pool: the request ended cleanly, llhttp waits for the start of a message."""
        events = self._events
        self._drop_parser()
        idle = _idle_parsers
        if events is not None and len(idle) < PARSER_POOL_SIZE:
            idle.append(events)

    def _drop_parser(self) -> None:
        events = self._events
        if events is not None:
            events.reader = None
        self._events = None
        self._parser = None
        self._clean = False

    def _feed(self, data: bytes) -> None:
        if self._state == _HEAD and not self._have and not self._fresh_parser:
            # the common case: one read, one head within the limits (the checks _feed_head makes)
            cut = blank_line(data) + 4  # (3 when there is none)
            if 3 < cut == len(data) and data[0] > 13 and (cut <= self._max_line or (
                    cut <= self._max_head and data.find(b"\r\n") <= self._max_line)):
                # Its version, read off the request line, spares asking llhttp for it (a str made
                # per call); only " HTTP/1.1" counts, anything else is asked as before.
                self._http11 = _ends_http11(data, data)
                self._head_bytes = data
                if self._parser is None:
                    self._take_parser()
                try:
                    self._parser.feed_data(data)
                    return
                except _PARSER_STOPPED as exc:
                    failure = exc
                self._http11 = False
                self._head_failed(failure, data, data, cut)
                return
        pos, end = 0, len(data)
        while pos < end:
            state = self._state
            if state == _HEAD:
                pos = self._feed_head(data, pos)
            elif state == _BODY:
                take = self._remaining if self._remaining < end - pos else end - pos
                self._remaining -= take
                self._parse(data[pos:pos + take] if pos or take != end else data)
                pos += take
            elif state == _CHUNKED:
                pos = self._chunked.feed(data, pos)
                if self._chunked.done:
                    self._end_body()
            else:  # switched protocols (what follows is the new protocol's), or the connection closes
                return

    # -- heads ---------------------------------------------------------------------------------
    # llhttp sees head bytes as they arrive (so a broken line is refused at once), but never a byte
    # past the head's blank line.  The pieces of an unfinished head are kept (a list: a head that
    # trickles in byte by byte costs no quadratic copying) for parsing it again under a stand-in
    # method; the limits are on counts of bytes:
    #   * the request line (before the head's first CRLF) longer than max_request_line + 96: 414;
    #   * the head (its blank line included) longer than max_head: 431.
    # Before either answer llhttp parses the head up to the limit, so a fault it finds there wins,
    # whatever the split.

    def _feed_head(self, data: bytes, pos: int) -> int:
        have = self._have
        if have:  # the blank line may straddle the reads: look from the last bytes so far
            tail = self._tail
            cut = (tail + data[:3]).find(b"\r\n\r\n")
            if cut >= 0:
                cut += 4 - len(tail)
            else:
                cut = data.find(b"\r\n\r\n")
                if cut >= 0:
                    cut += 4
        else:
            while pos < len(data) and data[pos] in b"\r\n":  # empty lines before a request are skipped
                pos += 1
            if pos == len(data):
                return pos
            cut = data.find(b"\r\n\r\n", pos)
            if cut >= 0:
                cut += 4
        end = cut if cut >= 0 else len(data)
        piece = data if pos == 0 and end == len(data) else data[pos:end]
        if self._line < 0:
            self._measure_line(piece)
        total = have + len(piece)
        if cut >= 0:
            if total > self._max_head:
                self._too_long(piece, self._max_head)
            head = piece if not have else b"".join(self._parts) + piece
            self._have = 0
            self._parts = []
            self._tail = b""
            self._line = -1
            self._parse_head(piece, head, data, cut)
            return cut
        # no blank line yet: the head will be at least the bytes so far plus the rest of one
        tail = (self._tail + piece)[-3:]
        if total + 4 - _terminator_overlap(tail) > self._max_head:
            self._too_long(piece, self._max_head)
        self._have = total
        self._parts.append(piece)
        self._tail = tail
        self._parse_head(piece, b"", data, -1)
        return len(data)

    def _measure_line(self, piece: bytes) -> None:
        """Track the request line's length; 414 once it is known to be too long."""
        have = self._have
        if have and self._tail[-1:] == b"\r" and piece[:1] == b"\n":
            length = have - 1
        else:
            found = piece.find(b"\r\n")
            length = have + found if found >= 0 else -1
        if length >= 0:
            self._line = length
            if length > self._max_line:
                self._too_long(piece, self._max_line)
        elif have + len(piece) - piece.endswith(b"\r") > self._max_line:
            self._too_long(piece, self._max_line)

    def _too_long(self, piece: bytes, limit: int) -> None:
        """Refuse a request line or head longer than ``limit`` bytes, after parsing its bytes up to
        the limit (``piece`` is the part not parsed yet): a fault llhttp finds there is the answer."""
        have = self._have
        if have < limit:
            upto = limit - have
            if limit == self._max_line and piece[upto:upto + 1] == b"\r":
                upto += 1  # a line of the longest length may end there: llhttp sees that CR in any split
            head_so_far = b"".join(self._parts) + piece[:upto]
            self._parse_head(piece[:upto], head_so_far, b"", -1)
        if limit == self._max_line or self._line < 0:
            raise ClientError(414, "uri_too_long", "request line too long")
        raise _too_large("request head too large")

    def _parse_head(self, piece: bytes, head: bytes, data: bytes, cut: int) -> None:
        """Feed ``piece`` (the end of ``head`` so far) to llhttp; ``cut`` is where the head ends in
        ``data`` (-1: not yet)."""
        if self._fresh_parser:  # the last parser stopped amid a message: a clean one for this head
            self._drop_parser()
            self._fresh_parser = False
        if self._parser is None:
            self._take_parser()
        if self._extension_method is _PENDING:  # an unknown method whose name has not ended yet
            self._parse_with_stand_in(head or b"".join(self._parts), data, cut)
            return
        if head:
            self._head_bytes = head
        try:
            self._parser.feed_data(piece)
            return
        except _PARSER_STOPPED as exc:
            failure = exc
        self._head_failed(failure, head, data, cut)

    def _head_failed(self, failure: Exception, head: bytes, data: bytes, cut: int) -> None:
        """llhttp stopped in a head: a switch of protocols, a method it does not know, or a fault.
        (Called outside the ``except`` block: what is raised here must not take its context.)"""
        if isinstance(failure, httptools.HttpParserUpgrade):
            self._switched(data, cut)
        elif isinstance(failure, httptools.HttpParserInvalidMethodError):
            self._parse_with_stand_in(head or b"".join(self._parts), data, cut)
        else:
            raise _reader_error(failure)

    def _parse_with_stand_in(self, head: bytes, data: bytes, cut: int) -> None:
        """llhttp refused the method: if it is a token, parse the head (so far) again with a method
        llhttp knows, and give the head the real one."""
        start = len(head) - len(head.lstrip(b"\r\n"))  # after the empty lines llhttp skips
        space = head.find(b" ", start, start + 65)
        if space < 0:
            if cut < 0 and len(head) - start <= 64 and _METHOD_TOKEN.fullmatch(head, start) is not None:
                self._extension_method = _PENDING  # the method goes on in the next read
                return
            raise bad_request("invalid request method")
        method = head[start:space]
        if _METHOD_TOKEN.fullmatch(method) is None:
            raise bad_request("invalid request method")
        self._drop_parser()  # (it stopped on the method: a clean one for the head with the stand-in)
        self._take_parser()
        self._extension_method = method
        rewritten = head[:start] + _STAND_IN_METHOD + head[space:]
        self._parse_head(rewritten, rewritten, data, cut)

    def _switched(self, data: bytes, cut: int) -> None:
        """llhttp stopped after the head of a request that asks to switch protocols."""
        if self._state != _HEAD:
            return  # it has a body: never switched (see the module docstring), its body comes next
        self._state = _SWITCHED
        self._handler.on_request_upgrade(data[cut:])

    # -- bodies --------------------------------------------------------------------------------
    def _parse(self, data: bytes) -> None:
        """A piece of a Content-Length body, through llhttp (or, after a head llhttp did not
        expect a body for, straight to the handler)."""
        if self._fresh_parser:  # the upgrade request case: llhttp ended the message at its head
            self._deliver(data)
            if not self._remaining:
                self._end_body()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            raise _reader_error(exc) from None

    def _start_chunked(self) -> None:
        self._state = _CHUNKED
        self._fresh_parser = True  # llhttp saw the head only: it must not parse the next one
        limits = self._limits
        self._chunked = ChunkedDecoder(self._deliver, limits.max_body_size, limits.max_header_size)

    def _deliver(self, data: bytes) -> None:
        limit = self._limits.max_body_size
        if limit:
            self._body_bytes += len(data)
            if self._body_bytes > limit:
                raise _body_too_large()
        self._handler.on_request_body(data)

    def _end_body(self) -> None:
        self._state = _HEAD if self._head.keep_alive else _SWITCHED
        self._chunked = None
        self._ended()

    def _ended(self) -> None:
        """The request is complete: tell the handler, and let go of its head (the handler keeps
        what it needs; an idle connection holds no head)."""
        self._handler.on_request_end()
        self._head = None

    # -- httptools callbacks (inside feed_data of one head or one body piece) ------------------
    # The gateway's own rules on fields are noted as they go (the first fault is kept) and raised at
    # the end of the head: a line llhttp finds broken is reported before them in every split, while
    # httptools may hand over a field earlier or later depending on where a read ended.

    def on_message_begin(self) -> None:
        self._clean = False
        self._head = RequestHead()
        self._header_count = 0
        self._header_bytes = 0
        self._body_bytes = 0
        self._fault = None

    def on_url(self, url: bytes) -> None:
        head = self._head
        head.target = target = head.target + url if head.target else url
        if len(target) > self._max_target:
            self._note(ClientError(414, "uri_too_long", "request target too long"))

    def _field(self, field: tuple[bytes, bytes]) -> None:
        """One field line of the head (no httptools callback per field: see on_headers_complete)."""
        name, value = field
        self._header_count += 1
        self._header_bytes += len(name) + len(value) + 4
        if self._header_count > self._limits.max_headers:
            self._note(_too_large("too many header fields"))
            return
        if self._header_bytes > self._limits.max_header_size:
            self._note(_too_large("header fields too large"))
        special = self._special
        if not special.may_hold(name):  # most names: known end-to-end by their length and first letter
            kind = None
        else:
            kind = special.seen.get(name, UNSEEN)
            if kind is UNSEEN:
                kind = special.learn(name)
        if kind is None:
            self._head.headers.append(field)
        elif kind:
            try:
                self._special_header(kind, name, value)
            except ClientError as fault:
                self._note(fault)

    def _note(self, fault: ClientError) -> None:
        if self._fault is None:
            self._fault = fault

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
        # llhttp validated every line of the head: its field lines are read off the bytes here, in
        # one C loop, instead of one httptools callback per field (the reader has no on_header)
        head_bytes = self._head_bytes
        self._head_bytes = b""
        if not head_bytes:  # llhttp ended a head before its blank line arrived: an HTTP/0.9 line
            head_bytes = b"".join(self._parts)  # (ending in a bare LF), the head so far
            if not head_bytes:
                raise RuntimeError("request head complete without its bytes")  # (a bug of ours: a 500)
        for field in field_lines(head_bytes):
            self._field(field)
        if self._fault is not None:
            raise self._fault
        head = self._head
        parser = self._parser
        if self._http11:
            self._http11 = False
            version = "1.1"
        else:
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
        body_after_switch = False
        if head.upgrade is not None:  # llhttp switches on the same rule: Upgrade + "Connection: upgrade"
            if head.connection is None or b"upgrade" not in head.connection:
                head.upgrade = None  # Upgrade without "Connection: upgrade" is just a hop-by-hop field
            elif head.has_body:
                head.upgrade = None  # see the module docstring: the body is framed here, no switch
                body_after_switch = True
        self._handler.on_request_head(head)
        if head.chunked:
            self._start_chunked()
        elif head.content_length > 0:
            self._state = _BODY
            self._remaining = head.content_length
            # llhttp ends an upgrade request at its head: its body comes straight from us
            self._fresh_parser = body_after_switch

    def _drop_connection_named(self, head: RequestHead) -> None:
        """RFC 9110 §7.6.1: fields named in Connection are hop-by-hop too."""
        named = set(head.connection)
        named.discard(b"close")
        named.discard(b"keep-alive")
        named.discard(b"upgrade")
        if named:
            head.headers = [(n, v) for (n, v) in head.headers if n.lower() not in named]

    def on_body(self, body: bytes) -> None:
        self._deliver(body)

    def on_message_complete(self) -> None:
        if self._state == _HEAD:  # a request without a body: llhttp ends it with its head
            if not self._head.keep_alive:
                self._state = _SWITCHED
            self._clean = True  # (llhttp ended the message: it waits for the next one)
            self._ended()
        elif self._state == _BODY and not self._fresh_parser:  # the last Content-Length byte
            self._state = _HEAD if self._head.keep_alive else _SWITCHED
            self._clean = True
            self._ended()
        # otherwise the body is framed here (chunked, or after an upgrade head): _end_body ends it


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


#: compiled, _ends_http11 reads the bytes from a C pointer; the pure build slices
_COMPILED = not __file__.endswith(".py")


def _ends_http11(buf: bytes, data: bytes) -> bool:
    """Whether the first line of ``data`` (``buf`` is ``data``) is "METHOD TARGET HTTP/1.1": it
    ends in " HTTP/1.1" after a non-space, with a space before that (method and target have none).
    llhttp, which parses the line, reads version 1.1 from it.  ("CONNECT HTTP/1.1" is not one:
    there "HTTP/1.1" is the target of a request without a version.)  A bare LF before the
    CR ends the line for llhttp, which then reads it as HTTP/0.9: not one either."""
    if _COMPILED:
        end = len(data)
        at = 0
        while at < end and buf[at] != 13 and buf[at] != 10:
            at += 1
        if at == end or buf[at] == 10:  # a bare LF ends an HTTP/0.9 line to llhttp
            return False
        if not (at >= 12 and buf[at - 9] == 32 and buf[at - 8] == 72 and buf[at - 7] == 84
                and buf[at - 6] == 84 and buf[at - 5] == 80 and buf[at - 4] == 47 and buf[at - 3] == 49
                and buf[at - 2] == 46 and buf[at - 1] == 49 and buf[at - 10] != 32):
            return False
        space = 1
        while space < at - 10 and buf[space] != 32:
            space += 1
        return space < at - 10
    line = data.find(b"\r")
    if 0 <= data.find(b"\n", 0, line if line >= 0 else len(data)):  # a bare LF: an HTTP/0.9 line
        return False
    return (line >= 12 and data[line - 9:line] == b" HTTP/1.1" and data[line - 10] != 32
            and data.find(b" ", 1, line - 10) > 0)


def field_lines(head: bytes) -> list[tuple[bytes, bytes]]:
    """The field lines of a request head llhttp validated (request line to blank line; empty lines
    before the request line allowed), as llhttp reports them: ``(name, value)``, the value without
    its leading whitespace (llhttp keeps the trailing one).  Compiled, C loops over the bytes.

    A request line that ends in a bare LF is an HTTP/0.9 one to llhttp, which ends the head right
    there: no fields (what follows, in ``head``, is not the head's).  Every other line up to the
    blank line is a field line llhttp accepted, so it has a colon; should one not have any, the
    fields end before it, whatever the build."""
    fields = []
    end = len(head) - 2  # the blank line's CRLF
    if _COMPILED:
        buf = head
        pos = 0
        while pos < end and (buf[pos] == 13 or buf[pos] == 10):
            pos += 1
        pos = index_of(buf, 10, pos, end)  # noqa: F821 - bytescan.pxd, compiled build only
        if pos >= end or pos == 0 or buf[pos - 1] != 13:
            return fields
        pos += 1
        while pos < end:
            eol = index_of(buf, 13, pos, end)  # noqa: F821
            colon = index_of(buf, 58, pos, eol)  # noqa: F821
            if colon == eol:
                break
            value = colon + 1
            while value < eol and (buf[value] == 32 or buf[value] == 9):
                value += 1
            fields.append((buf[pos:colon], buf[value:eol]))
            pos = eol + 2
        return fields
    pos = head.find(b"\n", len(head) - len(head.lstrip(b"\r\n")), end)
    if pos <= 0 or head[pos - 1] != 13:
        return fields
    pos += 1
    while pos < end:
        eol = head.find(b"\r", pos, end)
        colon = head.find(b":", pos, eol)
        if eol < 0 or colon < 0:
            break
        fields.append((head[pos:colon], head[colon + 1:eol].lstrip(b" \t")))
        pos = eol + 2
    return fields


def blank_line(data: bytes) -> int:
    """Where the first CR LF CR LF of ``data`` begins, or -1 (a head's end, requests' and responses')."""
    if _COMPILED:
        buf = data  # compiled: a C pointer to the bytes, searched with memchr
        return blank_line_at(buf, 0, len(data))  # noqa: F821 - bytescan.pxd, compiled build only
    return data.find(b"\r\n\r\n")
