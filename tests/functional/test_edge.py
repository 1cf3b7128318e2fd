"""Edge hardening over real sockets (issue 7, points 1-7): clients that leave mid-body, chunk sizes
declared over the limit, protocol switches, path spellings that could bypass route rules, client
identity headers, methods, and response hygiene."""
from __future__ import annotations

import socket
import time

import pytest

from tests.support.origins import HttpOrigin, RecordingOrigin
from tests.support.rawclient import build_request

from .conftest import route, service
from .helpers import assert_error_answer, connect, get, metric_sum

pytestmark = pytest.mark.timeout(60)

_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
_SWITCH_H2C = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
_SWITCH_WS = (b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
              b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")


@pytest.fixture(scope="module")
def origins():  # type: ignore[no-untyped-def]
    servers = {"http": HttpOrigin(), "hold": RecordingOrigin(), "ok": RecordingOrigin(_OK),
               "h2c": RecordingOrigin(_SWITCH_H2C), "ws": RecordingOrigin(_SWITCH_WS)}
    for server in servers.values():
        server.start()
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="module")
def gw(module_gateway, origins):  # type: ignore[no-untyped-def]
    return module_gateway({
        # the body timeout is long so that only an immediate abort passes the mid-body tests
        "timeouts": {"client_body": "30s"},
        "limits": {"max_body_size": "1KiB"},
        "services": [service(name, origins[name], timeouts={"read": "10s"}) for name in origins],
        "routes": [
            route("hold", "/hold", "hold"),
            route("ok", "/ok", "ok"),
            route("h2c", "/h2c", "h2c"),
            route("ws", "/ws", "ws"),
            route("ws-h2c", "/ws-h2c", "h2c", upgrades=["h2c"]),
            route("no-upgrades", "/plain", "http", upgrades=[], strip_prefix=True),
            route("x-upgrade", "/x-upgrade", "http", upgrades=["x"], strip_prefix=True),
            # path equivalence: a deny rule, the prefix around it, a catch-all
            route("deny", ["/x/admin", "/admin"], respond={"status": 403, "body": "denied"}),
            route("x", "/x", "http", rewrite="/echo"),
            route("all", "/", "http"),
        ],
    })


def _carrying(origin: RecordingOrigin, marker: bytes, before: dict[int, int]) -> int | None:
    """The upstream connection whose bytes since ``before`` (lengths per connection) hold ``marker``."""
    for conn_id, data in list(origin.received.items()):
        if marker in data[before.get(conn_id, 0):]:
            return conn_id
    return None


def _ended_soon(origin: RecordingOrigin, conn_id: int, since: float, within: float) -> bool:
    ended = origin.wait_for(lambda: origin.ended.get(conn_id), timeout=within + 5)
    return bool(ended) and ended - since < within


def _metrics(gw) -> str:  # type: ignore[no-untyped-def]
    return gw.admin("GET", "/metrics").body.decode()


# --------------------------------------------------------------------------------------------
# 1. a client gone mid-body


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize("how", ["close", "half-close"])
def test_client_gone_mid_body_aborts_the_upstream_at_once(gw, origins, framing, how):
    origin = origins["hold"]
    before = metric_sum(_metrics(gw), "litemesh_requests_total", route="hold", code_class="4xx")
    seen_before = {conn_id: len(data) for conn_id, data in origin.received.items()}
    head = b"POST /hold HTTP/1.1\r\nHost: a\r\n" + (
        b"Content-Length: 1000\r\n\r\n" + b"a" * 100 if framing == "content-length"
        else b"Transfer-Encoding: chunked\r\n\r\n64\r\n" + b"a" * 100 + b"\r\n")
    sock = socket.create_connection(("127.0.0.1", gw.port))
    try:
        sock.sendall(head)
        conn_id = origin.wait_for(lambda: _carrying(origin, b"a" * 100, seen_before))
        assert conn_id
        left = time.monotonic()
        if how == "close":
            sock.close()
        else:
            sock.shutdown(socket.SHUT_WR)
        # the upstream connection is aborted now, not when client_body (30 s) expires
        assert _ended_soon(origin, conn_id, left, within=5.0)
        if how == "half-close":  # nothing can be answered for a request that never completed
            sock.settimeout(5)
            assert sock.recv(100) == b""
    finally:
        sock.close()
    # counted once, as 499 (a 4xx), and no longer in flight
    assert origin.wait_for(lambda: metric_sum(_metrics(gw), "litemesh_requests_total", route="hold",
                                              code_class="4xx") == before + 1)
    assert metric_sum(_metrics(gw), "litemesh_upstream_in_flight") == 0
    assert get(gw.port, "/ok").status == 200  # the gateway serves on


def test_client_gone_mid_body_behind_a_pipelined_request(gw, origins):
    origin = origins["hold"]
    seen_before = {conn_id: len(data) for conn_id, data in origin.received.items()}
    before = metric_sum(_metrics(gw), "litemesh_requests_total", code_class="4xx")
    with connect(gw.port) as conn:
        # the first request holds the line (its origin never answers); the second's body breaks off
        conn.send(b"POST /hold HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nfirst"
                  b"POST /ok HTTP/1.1\r\nHost: a\r\nContent-Length: 500\r\n\r\n" + b"b" * 10)
        conn_id = origin.wait_for(lambda: _carrying(origin, b"first", seen_before))
        assert conn_id
        conn.sock.shutdown(socket.SHUT_WR)
        # the second is given up (499; never routed) at once, while the first still waits for its answer
        assert origin.wait_for(lambda: metric_sum(_metrics(gw), "litemesh_requests_total",
                                                  code_class="4xx") == before + 1, timeout=5)
        assert conn.buf == b"" and not origin.ended.get(conn_id)
    assert b"POST /ok" not in origins["ok"].all_received()


# --------------------------------------------------------------------------------------------
# 2. declared chunk sizes


@pytest.mark.parametrize("split", [False, True])
def test_chunk_declaring_more_than_the_limit_is_413_before_any_of_it_is_forwarded(gw, origins, split):
    origin = origins["hold"]
    before = {conn_id: len(data) for conn_id, data in origin.received.items()}
    head = b"POST /hold HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n"
    big = b"100000\r\n" + b"Z" * 500  # 1 MiB declared against a 1 KiB limit; 500 bytes already sent
    with connect(gw.port) as conn:
        if split:
            conn.send(head)
            conn_id = origin.wait_for(lambda: _carrying(origin, b"first", before))
            assert conn_id
        conn.send(head + big if not split else big)
        resp = conn.recv_response()
        assert_error_answer(resp, 413)
        assert resp.reason == "Content Too Large"
        assert conn.is_closed(3)
    if split:  # the connection carried part of the request: closed, never pooled
        assert _ended_soon(origin, conn_id, time.monotonic(), within=5.0)
    assert b"Z" not in origin.all_received()


# --------------------------------------------------------------------------------------------
# 3. protocol switches


def _upgrade_request(path: str, protocol: str, extra: list[tuple[str, str]] | None = None) -> bytes:
    return build_request("GET", path, [("Connection", "Upgrade"), ("Upgrade", protocol),
                                       ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                                       ("Sec-WebSocket-Version", "13"), *(extra or [])])


def test_unlisted_upgrade_is_dropped_and_the_request_proxied_as_http(gw, origins):
    resp = get(gw.port, "/echo", headers=[("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"),
                                           ("HTTP2-Settings", "AAMAAABkAAQAAP__")])
    assert resp.status == 200
    seen = {name.lower(): value for name, value in resp.json()["headers"]}
    assert "upgrade" not in seen and "http2-settings" not in seen
    assert "upgrade" not in seen.get("connection", "").lower()


def test_upstream_cannot_switch_to_a_protocol_the_route_did_not_approve(gw, origins):
    # h2c is not allowed on /h2c: the request goes without Upgrade, so the origin's 101 is refused
    origin = origins["h2c"]
    seen_before = {conn_id: len(data) for conn_id, data in origin.received.items()}
    with connect(gw.port) as conn:
        conn.send(build_request("GET", "/h2c", [("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"),
                                                ("HTTP2-Settings", "AAMAAABkAAQAAP__")]) + b"PRI * HTTP/2.0 raw")
        assert_error_answer(conn.recv_response(), 502)
        assert conn.is_closed(3)
    received = b"".join(bytes(data[seen_before.get(c, 0):]) for c, data in origin.received.items())
    assert b"upgrade" not in received.lower() and b"PRI" not in received


def test_101_must_name_the_protocol_the_client_asked_for(gw, origins):
    # websocket is allowed and asked for; the origin switches to h2c instead
    origin = origins["h2c"]
    seen_before = {conn_id: len(data) for conn_id, data in origin.received.items()}
    with connect(gw.port) as conn:
        conn.send(_upgrade_request("/h2c", "websocket") + b"RAW-CLIENT-BYTES")
        assert_error_answer(conn.recv_response(), 502)
        assert conn.is_closed(3)
    received = b"".join(bytes(data[seen_before.get(c, 0):]) for c, data in origin.received.items())
    assert b"Upgrade: websocket" in received and b"RAW-CLIENT-BYTES" not in received


def test_only_the_route_s_protocols_are_offered(gw, origins):
    # /ws-h2c allows h2c only: a websocket request goes as plain HTTP and the 101 is refused
    origin = origins["h2c"]
    seen_before = {conn_id: len(data) for conn_id, data in origin.received.items()}
    with connect(gw.port) as conn:
        conn.send(_upgrade_request("/ws-h2c", "websocket") + b"RAW-CLIENT-BYTES")
        assert_error_answer(conn.recv_response(), 502)
    received = b"".join(bytes(data[seen_before.get(c, 0):]) for c, data in origin.received.items())
    assert b"RAW-CLIENT-BYTES" not in received and b"upgrade" not in received.lower()


def test_matching_switch_is_tunnelled_with_the_bytes_after_the_head(gw, origins):
    origin = origins["ws"]
    seen_before = {conn_id: len(data) for conn_id, data in origin.received.items()}
    with connect(gw.port) as conn:
        conn.send(_upgrade_request("/ws", "websocket") + b"FRAME-BYTES")
        resp = conn.recv_response()
        assert resp.status == 101 and resp.header("upgrade") == "websocket"
        assert origin.wait_for(lambda: _carrying(origin, b"FRAME-BYTES", seen_before))


def test_route_without_upgrades_forwards_websocket_as_plain_http(gw, origins):
    with connect(gw.port) as conn:
        conn.send(_upgrade_request("/plain/ws", "websocket"))
        resp = conn.recv_response()
        assert resp.status == 426  # the origin's answer to a /ws request that is not an upgrade
        assert "close" in resp.header("connection", "").lower()


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_upgrade_request_with_a_body_delivers_it_as_body(gw, origins, framing):
    headers = [("Connection", "Upgrade"), ("Upgrade", "x")]
    with connect(gw.port) as conn:
        data = build_request("POST", "/x-upgrade/echo", headers, b"abc" if framing == "content-length" else [b"abc"])
        conn.send(data + build_request("GET", "/echo/next"))
        first = conn.recv_response()
        assert first.status == 200 and first.json()["body_len"] == 3
        assert "upgrade" not in {name.lower() for name, _ in first.json()["headers"]}
        second = conn.recv_response()  # the bytes after the body were the next request
        assert second.status == 200 and second.json()["path"] == "/echo/next"


# --------------------------------------------------------------------------------------------
# 4. path equivalence


@pytest.mark.parametrize("path", ["/x//admin", "//admin", "/x/.//admin", "/x/%61dmin", "/x/%2e%2e/admin"])
def test_equivalent_spellings_meet_the_deny_rule(gw, path):
    resp = get(gw.port, path)
    assert (resp.status, resp.body) == (403, b"denied")


@pytest.mark.parametrize("path", [
    "/x/..%2Fadmin", "/x/..%2fadmin", "/x/..%5Cadmin", "/x/..\\admin", "/x/admin;jsessionid=1",
    "/x/..;/admin", "/x/%2E%2E%2Fadmin", "/x/admin;/",
])
def test_spellings_a_backend_may_read_as_the_denied_path_are_400(gw, path):
    assert_error_answer(get(gw.port, path), 400)


@pytest.mark.parametrize("path", ["/x/..%2F..%2Fetc/passwd", "/x/..;/..;/etc"])
def test_lenient_reading_above_the_root_is_400(gw, path):
    assert_error_answer(get(gw.port, path), 400)


def test_encoded_slash_within_one_route_is_forwarded_as_sent(gw):
    # the lenient reading (/echo/group/project) is the same route: forwarded untouched
    assert get(gw.port, "/echo/group%2Fproject;v=1").json()["path"] == "/echo/group%2Fproject;v=1"


def test_merged_path_is_what_the_upstream_sees(gw):
    assert get(gw.port, "//echo///a//b").json()["path"] == "/echo/a/b"


# --------------------------------------------------------------------------------------------
# 5. client identity headers


@pytest.fixture(scope="module")
def gw_trusting(module_gateway, origins):  # type: ignore[no-untyped-def]
    return module_gateway({
        "server": {"trust_forwarded": ["127.0.0.1", "10.0.0.0/8"], "emit_forwarded": True,
                   "allow_trace": True, "merge_slashes": False},
        "services": [service("http", origins["http"])],
        "routes": [route("all", "/", "http")],
    }, name="trusting")


def _seen(resp) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    out: dict[str, list[str]] = {}
    for name, value in resp.json()["headers"]:
        out.setdefault(name.lower(), []).append(value)
    return out


def test_untrusted_client_cannot_claim_an_address(gw):
    seen = _seen(get(gw.port, "/echo", headers=[
        ("X-Forwarded-For", "6.6.6.6"), ("X-Real-IP", "6.6.6.6"), ("Forwarded", "for=6.6.6.6;proto=https"),
        ("X-Forwarded-Proto", "https")]))
    assert seen["x-forwarded-for"] == ["127.0.0.1"]
    assert seen["x-real-ip"] == ["127.0.0.1"]
    assert seen["x-forwarded-proto"] == ["http"]
    assert "forwarded" not in seen


def test_trusted_chain_gives_the_first_untrusted_address_from_the_right(gw_trusting):
    seen = _seen(get(gw_trusting.port, "/echo", host="shop.test", headers=[
        ("X-Forwarded-For", "6.6.6.6, 203.0.113.9, 10.1.2.3"), ("X-Real-IP", "6.6.6.6"),
        ("Forwarded", "for=203.0.113.9")]))
    assert seen["x-forwarded-for"] == ["6.6.6.6, 203.0.113.9, 10.1.2.3, 127.0.0.1"]
    assert seen["x-real-ip"] == ["203.0.113.9"]  # 10.1.2.3 and 127.0.0.1 are trusted hops; 6.6.6.6 unverifiable
    assert seen["forwarded"] == ['for=203.0.113.9, for=127.0.0.1;proto=http;host="shop.test"']


def test_trace_forwarded_when_allowed(gw_trusting):
    assert get(gw_trusting.port, "/echo", method="TRACE").json()["method"] == "TRACE"


def test_merge_slashes_off_forwards_them(gw_trusting):
    assert get(gw_trusting.port, "/echo//a").json()["path"] == "/echo//a"


def test_all_trusted_chain_gives_the_leftmost(gw_trusting):
    seen = _seen(get(gw_trusting.port, "/echo", headers=[("X-Forwarded-For", "10.9.9.9")]))
    assert seen["x-real-ip"] == ["10.9.9.9"]


# --------------------------------------------------------------------------------------------
# 6. methods


def test_trace_is_405_and_the_connection_stays(gw, origins):
    with connect(gw.port) as conn:
        resp = conn.request("TRACE", "/echo")
        assert_error_answer(resp, 405)
        assert "GET" in resp.header("allow", "")
        assert conn.request("GET", "/echo").status == 200


@pytest.mark.parametrize("method", ["PURGE", "PROPFIND", "QUERY", "BREW", "X-CUSTOM", "get"])
def test_extension_methods_are_forwarded(gw, origins, method):
    origin = origins["ok"]
    line = f"\r\n{method} /ok/x HTTP/1.1\r\n".encode()
    before = (b"\r\n" + origin.all_received()).count(line)  # pooled connections: count, do not index
    resp = get(gw.port, "/ok/x", method=method)
    assert (resp.status, resp.body) == (200, b"ok")
    assert (b"\r\n" + origin.all_received()).count(line) == before + 1


def test_extension_method_pipelined_behind_another_request_is_forwarded(gw, origins):
    origin = origins["ok"]
    before = (b"\r\n" + origin.all_received()).count(b"\r\nBREW /ok/pipelined HTTP/1.1\r\n")
    with connect(gw.port) as conn:
        conn.send(build_request("GET", "/ok") + build_request("BREW", "/ok/pipelined"))
        assert conn.recv_response().status == 200
        assert conn.recv_response().status == 200
    assert (b"\r\n" + origin.all_received()).count(b"\r\nBREW /ok/pipelined HTTP/1.1\r\n") == before + 1


def test_connect_is_405(gw):
    with connect(gw.port) as conn:
        conn.send(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        resp = conn.recv_response()
        assert_error_answer(resp, 405)
        assert resp.header("allow")


def test_parse_error_text_does_not_leak_parser_internals(gw):
    with connect(gw.port) as conn:
        conn.send(b"GET /ok HTTP/1.1\r\nHost: a\r\nBad Name: 1\r\n\r\n")
        data = assert_error_answer(conn.recv_response(), 400)
    assert data["error"] == "invalid header field"


# --------------------------------------------------------------------------------------------
# 7. response hygiene


def test_date_is_added_when_the_upstream_sends_none(gw):
    resp = get(gw.port, "/echo")
    assert resp.status == 200 and len(resp.header_all("date")) == 1
    assert resp.header("date").endswith(" GMT")


def test_upstream_date_is_kept(gw):
    resp = get(gw.port, "/headers?Date=Tue,%2015%20Nov%201994%2008:12:31%20GMT")
    assert resp.header_all("date") == ["Tue, 15 Nov 1994 08:12:31 GMT"]


def test_current_reason_phrases(gw):
    with connect(gw.port) as conn:
        conn.send(build_request("GET", "/" + "a" * 9000))
        resp = conn.recv_response()
        assert (resp.status, resp.reason) == (414, "URI Too Long")
    with connect(gw.port) as conn:
        resp = conn.request("POST", "/ok", body=b"z" * 2000)
        assert (resp.status, resp.reason) == (413, "Content Too Large")


def test_missing_http_version_is_400(gw):
    with connect(gw.port) as conn:
        conn.send(b"GET /echo\r\n\r\n")
        data = assert_error_answer(conn.recv_response(), 400)
    assert data["error"] == "missing HTTP version"
