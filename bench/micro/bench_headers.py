"""Micro-benchmarks of header processing on the request path.

    python -m pytest bench/micro/bench_headers.py --benchmark-only

* ``RequestReader.feed`` of a typical 8-header GET and of a 20-header POST (parse + classify +
  validate; the reader is pure Python in both builds, LITEMESH_NO_EXTENSIONS does not change it);
* ``Exchange._upstream_head`` building the upstream request head, with light stand-ins for the
  connection, snapshot and route;
* ``writer.local_response`` and ``writer.error_response``;
* ``Router.match`` over 1,000 routes, backed by ``RouteTriePy`` and ``RouteTrieC`` (skipped if the
  extension was not built or LITEMESH_NO_EXTENSIONS is set).
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from litemesh.algo.trie import RouteTrieC, RouteTriePy
from litemesh.errors import bad_request
from litemesh.http import writer
from litemesh.http.request import RequestHandler, RequestReader
from litemesh.proxy.contracts import Downstream
from litemesh.proxy.exchange import Exchange
from litemesh.proxy.router import Route, RouteEntry, Router

GET_8 = (
    b"GET /api/v1/users/42?expand=orders HTTP/1.1\r\n"
    b"Host: api.example.com\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n"
    b"Accept: application/json\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\n"
    b"Accept-Language: en-US,en;q=0.9\r\n"
    b"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl\r\n"
    b"Connection: keep-alive\r\n"
    b"X-Request-ID: 7f3c2a9e-1b4d-4c8e-9f6a-0d2e5b7c8a91\r\n"
    b"\r\n"
)

POST_20 = (
    b"POST /api/v2/orders/1234/items HTTP/1.1\r\n"
    b"Host: api.example.com:8443\r\n"
    b"User-Agent: okhttp/4.12.0\r\n"
    b"Accept: application/json\r\n"
    b"Accept-Encoding: gzip\r\n"
    b"Accept-Language: de-DE\r\n"
    b"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl\r\n"
    b"Content-Type: application/json; charset=utf-8\r\n"
    b"Content-Length: 26\r\n"
    b"Cookie: session=abcdef0123456789; theme=dark; lang=de\r\n"
    b"Cache-Control: no-cache\r\n"
    b"Pragma: no-cache\r\n"
    b"Origin: https://app.example.com\r\n"
    b"Referer: https://app.example.com/orders/1234\r\n"
    b"X-Forwarded-For: 203.0.113.7, 198.51.100.2\r\n"
    b"X-Forwarded-Proto: https\r\n"
    b"X-Request-ID: 7f3c2a9e-1b4d-4c8e-9f6a-0d2e5b7c8a91\r\n"
    b"X-Client-Version: 3.14.15\r\n"
    b"Sec-Fetch-Mode: cors\r\n"
    b"Connection: keep-alive\r\n"
    b"Via: 1.1 edge-1\r\n"
    b"\r\n"
    b'{"sku":"A-1","quantity":3}'
)


class Sink(RequestHandler):
    """A handler that keeps only the last head."""

    __slots__ = ("head",)

    def __init__(self) -> None:
        self.head = None

    def on_request_head(self, head) -> None:
        self.head = head

    def on_request_body(self, data: bytes) -> None:
        pass

    def on_request_end(self) -> None:
        pass

    def on_request_upgrade(self, rest: bytes) -> None:
        pass


@pytest.mark.parametrize("name,data,count", [("get-8-headers", GET_8, 5), ("post-20-headers", POST_20, 13)])
def test_reader_feed(benchmark, name, data, count):
    sink = Sink()
    reader = RequestReader(sink)  # keep-alive: one reader parses request after request
    reader.feed(data)
    reader.feed(data)
    assert not reader.in_head  # each feed is exactly one complete request (body included)
    # forwarded as is: all but Host, Connection, Content-Length and the X-Forwarded-*/Via/X-Request-ID lines
    assert sink.head is not None and len(sink.head.headers) == count, sink.head.headers
    benchmark.group = "RequestReader.feed"
    benchmark(reader.feed, data)


def _exchange(data: bytes, *, trust_forwarded: bool) -> tuple[Exchange, Route]:
    sink = Sink()
    RequestReader(sink).feed(data)
    exchange = Exchange.__new__(Exchange)  # no connection needed: set just what _upstream_head reads
    exchange.head = sink.head
    exchange.snapshot = SimpleNamespace(trusted_proxies=None, emit_forwarded=False, via=b"1.1 litemesh",
                                        request_id_header=b"X-Request-ID")
    conn = Downstream()
    conn.client_ip, conn.scheme = b"192.0.2.10", b"https"
    exchange.conn = conn
    exchange.upstream_path = b"/v1/users/42"
    exchange.query = b"?expand=orders"
    exchange.request_id = b"7f3c2a9e-1b4d-4c8e-9f6a-0d2e5b7c8a91"
    return exchange, Route("bench", None, None, preserve_host=False)


@pytest.mark.parametrize("name,data", [("get-8-headers", GET_8), ("post-20-headers", POST_20)])
def test_upstream_head(benchmark, name, data):
    exchange, route = _exchange(data, trust_forwarded=True)
    head = exchange._upstream_head(route, b"10.0.0.5:8080")
    assert head.startswith(b"%s /v1/users/42?expand=orders HTTP/1.1\r\nHost: 10.0.0.5:8080\r\n" % exchange.head.method)
    assert b"Connection" not in head and head.endswith(b"\r\n\r\n")
    benchmark.group = "Exchange._upstream_head"
    benchmark(exchange._upstream_head, route, b"10.0.0.5:8080")


def test_local_response(benchmark):
    headers = [(b"Content-Type", b"application/json"), (b"Cache-Control", b"no-store")]
    body = b'{"status":"ok"}'
    benchmark.group = "writer"
    benchmark(writer.local_response, 200, headers, body, keep_alive=True, request_id=b"abc123")


def test_error_response(benchmark):
    error = bad_request("invalid Host header")
    benchmark.group = "writer"
    benchmark(writer.error_response, error, b"abc123")


IMPLS = {"py": RouteTriePy, "c": RouteTrieC}


def _router(cls, n: int = 1000) -> Router:
    router = Router()
    router.trie = cls()
    for i in range(n):
        route = Route(f"r{i}", None, None, False)
        kind = i % 3
        if kind == 0:
            pattern, hosts, methods = f"/api/v1/svc{i}/users/{{user_id}}", (), ("GET", "HEAD")
        elif kind == 1:
            pattern, hosts, methods = f"=/api/v1/svc{i}/health", (), ()
        else:
            pattern, hosts, methods = f"/static/svc{i}/", ("*.example.com",), ()
        router.add(RouteEntry(route, pattern, ()), hosts, methods, 0)
    router.add(RouteEntry(Route("fallback", None, None, False), "/", ()), (), (), 0)
    return router


@pytest.mark.parametrize("impl", ["py", "c"])
def test_router_match(benchmark, impl):
    cls = IMPLS[impl]
    if cls is None:
        pytest.skip("compiled trie not available (not built, or LITEMESH_NO_EXTENSIONS set)")
    router = _router(cls)
    found = router.match("api.example.com", "GET", "/api/v1/svc501/users/42/profile")
    assert found is not None and found[0].route.name == "r501" and found[1] == {"user_id": "42"}
    benchmark.group = "Router.match, 1,000 routes"
    benchmark(router.match, "api.example.com", "GET", "/api/v1/svc501/users/42/profile")
