"""What a filter sees of a request, and the filter contract.

Filters are small objects built once per route when a snapshot is compiled.  They see one
:class:`RequestContext` per request: the method, the path and query that will go upstream, the
route's path parameters, the end-to-end request fields, the client address and the route's name,
with ways to change what goes upstream, add response fields, or answer locally.  They never see the
exchange, the protocol or a transport, and this package imports nothing of the proxy core or the
server: data flows one way, server → proxy core → filters (tests/unit/test_architecture.py).

Request phase, in configuration order: ``on_request(context)``; a filter that calls
:meth:`RequestContext.respond` ends the chain and the request is answered without an upstream.
Response phase, in reverse order: ``on_response_head(context, status, fields)`` may edit the list of
response fields in place.  Base hooks are no-ops, and a route whose filters do not override a hook
skips it entirely: :func:`split_chain` keeps only the filters that implement each phase, so a route
without filters makes no context at all.
"""
from __future__ import annotations

import re
from typing import Iterable, Sequence

from ..http.request import GATEWAY_OWNED_FIELDS

#: RFC 9110 §5.6.2 token (a field name) and §5.5 field value (no CR, LF or NUL)
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_UNSAFE_VALUE = re.compile(rb"[\x00\r\n]")


def _checked_field(name: bytes, value: bytes) -> tuple[bytes, bytes]:
    """A field a filter may send: a token name the gateway does not set itself, a single-line value."""
    if _TOKEN.fullmatch(name) is None:
        raise ValueError(f"invalid field name {name!r}")
    if name.lower() in GATEWAY_OWNED_FIELDS:
        raise ValueError(f"{name.decode('latin-1')} is set by the gateway, not by filters")
    if _UNSAFE_VALUE.search(value) is not None:
        raise ValueError(f"invalid value for field {name.decode('latin-1')}: CR, LF and NUL are not allowed")
    return name, value.strip(b" \t")


class RequestContext:
    """One request as filters see it (made only for routes that have filters).

    ``path`` and ``query`` are what will be sent upstream (a filter may replace them; ``query`` is
    empty or starts with ``?``); ``headers`` are the request's end-to-end fields in the client's
    order (framing, hop-by-hop and forwarding fields are the gateway's and never appear here).
    """

    __slots__ = ("method", "path", "query", "params", "headers", "client_ip", "route", "request_id", "reply",
                 "response_headers")

    def __init__(self, method: bytes, path: bytes, query: bytes, params: dict[str, str] | None,
                 headers: list[tuple[bytes, bytes]], client_ip: bytes, route: str, request_id: bytes) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.params = params
        self.headers = headers
        self.client_ip = client_ip
        self.route = route
        self.request_id = request_id
        #: (status, fields, body) once a filter answered locally
        self.reply: tuple[int, list[tuple[bytes, bytes]], bytes] | None = None
        #: fields added to whatever response the client gets (upstream or local)
        self.response_headers: list[tuple[bytes, bytes]] = []

    # -- request fields -----------------------------------------------------------------------
    def header(self, name: bytes) -> bytes | None:
        """The first value of field ``name`` (any case), or None."""
        lower = name.lower()
        for field, value in self.headers:
            if field.lower() == lower:
                return value
        return None

    def add_header(self, name: bytes, value: bytes) -> None:
        """Send one more field upstream."""
        self.headers.append(_checked_field(name, value))

    def set_header(self, name: bytes, value: bytes) -> None:
        """Send ``name: value`` upstream in place of every field of that name the client sent."""
        field = _checked_field(name, value)
        self.remove_header(name)
        self.headers.append(field)

    def remove_header(self, name: bytes) -> None:
        """Send no field of that name upstream."""
        lower = name.lower()
        self.headers[:] = [(field, value) for (field, value) in self.headers if field.lower() != lower]

    # -- the response -------------------------------------------------------------------------
    def add_response_header(self, name: bytes, value: bytes) -> None:
        """Add a field to the response the client gets, from the upstream or from the gateway."""
        self.response_headers.append(_checked_field(name, value))

    def respond(self, status: int, body: bytes = b"", headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
        """Answer the request here (the rest of the chain and the upstream are skipped)."""
        if not 200 <= status <= 599:
            raise ValueError(f"a filter answers with a final status (200-599), not {status}")
        self.reply = (status, [_checked_field(name, value) for name, value in headers], body)


class Filter:
    __slots__ = ()

    def on_request(self, context: RequestContext) -> None:
        return None

    def on_response_head(self, context: RequestContext, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        return None


def split_chain(filters: Sequence[Filter]) -> tuple[tuple[Filter, ...], tuple[Filter, ...]]:
    """``(request_hooks_in_order, response_hooks_in_reverse)``, each with only the filters that act."""
    request = tuple(f for f in filters if type(f).on_request is not Filter.on_request)
    response = tuple(f for f in reversed(filters) if type(f).on_response_head is not Filter.on_response_head)
    return request, response
