"""The filter contract: what a filter sees (RequestContext), what it may change, and the effect of
each change on the bytes the upstream and the client get (the real request path, sans-IO)."""
from __future__ import annotations

import pytest

from litemesh.filters.context import Filter, RequestContext, split_chain
from tests.support.sansio import ProxyHarness

GET = b"GET /api/items?x=1 HTTP/1.1\r\nHost: gw\r\nAccept: */*\r\nX-Tenant: a\r\nX-Tenant: b\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Up: 1\r\n\r\nok"


def _context(headers: list[tuple[bytes, bytes]] | None = None) -> RequestContext:
    return RequestContext(b"GET", b"/p", b"", None, headers if headers is not None else [], b"10.0.0.1", "r", b"rid")


def test_request_fields_read_set_add_remove_in_any_case():
    context = _context([(b"Accept", b"*/*"), (b"X-Tenant", b"a"), (b"x-tenant", b"b")])
    assert context.header(b"x-TENANT") == b"a" and context.header(b"missing") is None
    context.set_header(b"X-Tenant", b" c ")
    assert context.headers == [(b"Accept", b"*/*"), (b"X-Tenant", b"c")]
    context.add_header(b"X-Extra", b"1")
    context.remove_header(b"accept")
    assert context.headers == [(b"X-Tenant", b"c"), (b"X-Extra", b"1")]


@pytest.mark.parametrize("name", [b"Content-Length", b"transfer-encoding", b"Host", b"Connection", b"X-Forwarded-For",
                                  b"x-real-ip", b"Via", b"Forwarded", b"X-Request-Id", b"TE", b"Upgrade"])
def test_fields_the_gateway_sets_are_refused(name):
    context = _context()
    for change in (context.add_header, context.set_header, context.add_response_header):
        with pytest.raises(ValueError, match="set by the gateway"):
            change(name, b"1")
    assert context.headers == [] and context.response_headers == []


@pytest.mark.parametrize("name, value", [(b"X-A", b"1\r\nInjected: yes"), (b"X-A", b"1\n"), (b"X-A", b"\x00"),
                                         (b"Bad Name", b"1"), (b"", b"1"), (b"X:A", b"1")])
def test_field_injection_is_refused(name, value):
    context = _context()
    with pytest.raises(ValueError, match="invalid"):
        context.add_header(name, value)
    with pytest.raises(ValueError, match="invalid"):
        context.respond(200, b"", [(name, value)])
    assert context.reply is None


@pytest.mark.parametrize("status", [100, 101, 199, 600, 0])
def test_a_local_answer_has_a_final_status(status):
    with pytest.raises(ValueError, match="final status"):
        _context().respond(status)


def test_split_chain_keeps_only_the_hooks_a_filter_implements():
    class Both(Filter):
        def on_request(self, context): ...
        def on_response_head(self, context, status, headers): ...

    class RequestOnly(Filter):
        def on_request(self, context): ...

    both, request_only, neither = Both(), RequestOnly(), Filter()
    assert split_chain([both, request_only, neither]) == ((both, request_only), (both,))


# -- through the real request path ----------------------------------------------------------------
def _harness(*filters: Filter) -> ProxyHarness:
    harness = ProxyHarness()
    for entry in harness.state.snapshot.router.entries:
        entry.request_filters, entry.response_filters = split_chain(filters)
    return harness


class Recorder(Filter):
    def __init__(self) -> None:
        self.seen: list[tuple] = []

    def on_request(self, context: RequestContext) -> None:
        self.seen.append((context.method, context.path, context.query, context.params, context.client_ip,
                          context.route, context.request_id, list(context.headers)))


def test_a_filter_sees_the_request_and_not_the_exchange():
    recorder = Recorder()
    harness = _harness(recorder)
    harness.send(GET)
    assert recorder.seen == [(b"GET", b"/api/items", b"?x=1", None, b"127.0.0.1", "all", b"0123456789abcdef",
                              [(b"Accept", b"*/*"), (b"X-Tenant", b"a"), (b"X-Tenant", b"b")])]
    assert not set(RequestContext.__slots__) & {"conn", "exchange", "transport", "head", "snapshot", "upstream"}


def test_request_changes_reach_the_upstream():
    class Rewrite(Filter):
        def on_request(self, context: RequestContext) -> None:
            context.path = b"/v2" + context.path
            context.query = b""
            context.set_header(b"x-tenant", b"z")
            context.add_header(b"X-Consumer", b"alice")
            context.remove_header(b"Accept")

    harness = _harness(Rewrite())
    harness.send(GET)
    sent = harness.sent_upstream
    assert sent.startswith(b"GET /v2/api/items HTTP/1.1\r\nHost: 127.0.0.1:9\r\nx-tenant: z\r\nX-Consumer: alice\r\n")
    assert b"Accept" not in sent and b"X-Tenant: a" not in sent


def test_response_fields_added_by_a_request_filter_reach_the_client():
    class Tag(Filter):
        def on_request(self, context: RequestContext) -> None:
            context.add_response_header(b"X-Route", context.route.encode())

    harness = _harness(Tag())
    harness.send(GET)
    harness.respond(OK)
    head, body = harness.to_client.split(b"\r\n\r\n", 1)
    assert b"\r\nX-Route: all" in head and b"\r\nX-Up: 1" in head and b"\r\nContent-Length: 2" in head
    assert body == b"ok" and harness.upstream_pooled


def test_a_response_filter_edits_the_fields_and_sees_the_same_context():
    class Edit(Filter):
        def on_response_head(self, context: RequestContext, status: int, headers: list) -> None:
            headers[:] = [(n, v) for n, v in headers if n != b"X-Up"]
            headers.append((b"X-Status", b"%d" % status))
            headers.append((b"X-Path", context.path))

    harness = _harness(Edit())
    harness.send(GET)
    harness.respond(OK)
    head = harness.to_client.split(b"\r\n\r\n", 1)[0]
    assert b"X-Up" not in head and b"\r\nX-Status: 200" in head and b"\r\nX-Path: /api/items" in head


def test_a_local_answer_stops_the_chain_and_keeps_the_connection():
    class Deny(Filter):
        def on_request(self, context: RequestContext) -> None:
            context.add_response_header(b"X-Why", b"tenant")
            context.respond(403, b'{"error":"forbidden"}', [(b"Content-Type", b"application/json")])

    after = Recorder()
    harness = _harness(Deny(), after)
    harness.send(GET)
    head, body = harness.to_client.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 403 ") and b"\r\nContent-Type: application/json" in head
    assert b"\r\nX-Why: tenant" in head and body == b'{"error":"forbidden"}'
    assert after.seen == [] and harness.sent_upstream == b"" and not harness.client_transport.closed
