"""Proxying basics through a real gateway: connection reuse, pipelining, HTTP/1.0, framing,
forwarded and hop-by-hop headers, routing and path normalization."""
from __future__ import annotations

import hashlib

import pytest

from tests.support.origins import HttpOrigin, pattern_bytes
from tests.support.rawclient import build_request

from .conftest import route, service
from .helpers import assert_error_answer, connect, get

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(scope="module")
def origin():
    with HttpOrigin() as srv:
        yield srv


def _config(origin, **server):  # type: ignore[no-untyped-def]
    return {
        "server": server or {},
        "services": [service("main", origin)],
        "routes": [
            route("origin", ["/echo", "/bytes", "/chunked", "/close", "/status", "/slow", "/headers",
                             "/upload"], "main"),
            # host routing (static answers say which route won)
            route("host-exact", "/r/host", hosts=["api.example.com"], respond={"status": 200, "body": "exact"}),
            route("host-wild", "/r/host", hosts=["*.example.com"], respond={"status": 200, "body": "wildcard"}),
            route("host-any", "/r/host", respond={"status": 200, "body": "any"}),
            # method routing
            route("m-get", "/r/method", methods=["GET"], respond={"status": 200, "body": "get"}),
            route("m-post", "/r/method", methods=["POST"], respond={"status": 200, "body": "post"}),
            # prefix / exact / param / regex, with path transforms seen at the upstream
            route("strip", "/api/strip", "main", strip_prefix=True),
            route("user-by-id", "=/users/{id}", "main", rewrite="/echo/user/{id}"),
            route("users-prefix", "/users", respond={"status": 200, "body": "users-prefix"}),
            route("v1", "/v1", "main", rewrite="/echo/v2"),
            route("rx", "~^/rx/(?P<n>[0-9]+)$", "main", rewrite="/echo/rx/{n}"),
            route("exact-only", "=/exact", respond={"status": 200, "body": "exact-path"}),
            # priority: the same pattern twice, the higher priority wins whatever the order
            route("prio-low", "/prio", respond={"status": 200, "body": "low"}),
            route("prio-high", "/prio", priority=10, respond={"status": 200, "body": "high"}),
            # static answers
            route("deny", "/deny", respond={"status": 403, "body": "forbidden\n"}),
            route("moved", "/old", respond={"status": 301, "headers": {"Location": "/new"}}),
            route("maint", "/maint", respond={"status": 503, "headers": {"Retry-After": "120"},
                                              "body": "down for maintenance\n"}),
            # path normalization targets
            route("admin", "/admin", respond={"status": 200, "body": "admin"}),
            route("public", "/public", respond={"status": 200, "body": "public"}),
        ],
    }


@pytest.fixture(scope="module")
def gw(module_gateway, origin):  # type: ignore[no-untyped-def]
    return module_gateway(_config(origin))


@pytest.fixture(scope="module")
def gw_trusting(module_gateway, origin):  # type: ignore[no-untyped-def]
    return module_gateway(_config(origin, trust_forwarded=["127.0.0.1"]), name="trusting")


def _header(record_or_json, name):  # type: ignore[no-untyped-def]
    values = [v for k, v in record_or_json["headers"] if k.lower() == name.lower()]
    return values


# --------------------------------------------------------------------------------------------
# connections


def test_keepalive_reuses_one_upstream_connection(gw, origin):
    with connect(gw.port) as conn:
        answers = []
        for i in range(5):
            resp = conn.request("GET", f"/echo?i={i}")
            assert resp.status == 200
            assert conn.keeps_alive(resp)
            answers.append(resp.json())
    assert [a["path"] for a in answers] == [f"/echo?i={i}" for i in range(5)]
    assert len({a["conn_id"] for a in answers}) == 1, answers
    assert [a["request_no"] for a in answers] == list(range(answers[0]["request_no"], answers[0]["request_no"] + 5))


def test_pipelining_five_requests_in_one_write(gw):
    requests = [
        build_request("GET", "/echo?i=0"),
        build_request("GET", "/bytes/1000"),
        build_request("POST", "/upload", body=b"x" * 777),
        build_request("GET", "/chunked/5000?chunk=100"),
        build_request("GET", "/echo?i=4"),
    ]
    with connect(gw.port) as conn:
        conn.send(b"".join(requests))
        r = [conn.recv_response(method=m) for m in ("GET", "GET", "POST", "GET", "GET")]
        assert r[0].json()["path"] == "/echo?i=0"
        assert r[1].body == pattern_bytes(1000)
        assert r[2].json() == {"body_len": 777, "body_sha256": hashlib.sha256(b"x" * 777).hexdigest()}
        assert r[3].body == pattern_bytes(5000) and r[3].chunked
        assert r[4].json()["path"] == "/echo?i=4"
        assert all(x.status == 200 for x in r)
        assert conn.buf == b""
        assert conn.request("GET", "/echo?after").json()["path"] == "/echo?after"


def test_pipelining_slow_first_keeps_order(gw):
    with connect(gw.port) as conn:
        conn.send(build_request("GET", "/slow/300") + build_request("GET", "/bytes/7")
                  + build_request("GET", "/echo?third") + build_request("HEAD", "/bytes/50")
                  + build_request("GET", "/status/404"))
        first = conn.recv_response()
        assert (first.status, first.body) == (200, b"slow\n")
        second = conn.recv_response()
        assert (second.status, second.body) == (200, pattern_bytes(7))
        assert conn.recv_response().json()["path"] == "/echo?third"
        head = conn.recv_response(method="HEAD")
        assert head.status == 200 and head.header("content-length") == "50" and head.body == b""
        last = conn.recv_response()
        assert (last.status, last.body) == (404, b"status 404\n")


def test_http10_closes_by_default(gw):
    with connect(gw.port) as conn:
        conn.send(b"GET /echo?v=10 HTTP/1.0\r\n\r\n")
        resp = conn.recv_response()
        assert resp.status == 200
        assert resp.json()["path"] == "/echo?v=10"
        assert "close" in resp.header("connection", "").lower()
        assert conn.is_closed(2)


def test_http10_keepalive_when_asked(gw):
    with connect(gw.port) as conn:
        for i in range(3):
            conn.send(f"GET /bytes/{100 + i} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".encode())
            resp = conn.recv_response()
            assert resp.status == 200
            assert resp.header("connection", "").lower() == "keep-alive"
            assert resp.body == pattern_bytes(100 + i)
        assert not conn.is_closed(0.2)


def test_connection_close_honoured(gw):
    with connect(gw.port) as conn:
        resp = conn.request("GET", "/echo", [("Connection", "close")])
        assert resp.status == 200
        assert resp.header("connection", "").lower() == "close"
        assert conn.is_closed(2)


def test_connection_close_on_static_route(gw):
    with connect(gw.port) as conn:
        resp = conn.request("GET", "/deny", [("Connection", "close")])
        assert resp.status == 403
        assert resp.header("connection", "").lower() == "close"
        assert conn.is_closed(2)


@pytest.mark.parametrize("method,path,status,length", [
    ("HEAD", "/bytes/1000", 200, "1000"),
    ("HEAD", "/chunked/1000", 200, None),
    ("GET", "/status/204", 204, None),
    ("GET", "/status/304", 304, None),
    ("HEAD", "/deny", 403, "10"),
])
def test_bodyless_framing_then_next_request(gw, method, path, status, length):
    with connect(gw.port) as conn:
        resp = conn.request(method, path)
        assert resp.status == status
        assert resp.body == b""
        assert resp.header("content-length") == length
        if status in (204, 304):
            assert resp.header("transfer-encoding") is None
        assert conn.keeps_alive(resp)
        nxt = conn.request("GET", "/bytes/33")
        assert (nxt.status, nxt.body) == (200, pattern_bytes(33))
        assert conn.buf == b""


def test_chunked_upstream_rechunked_for_http11(gw):
    with connect(gw.port) as conn:
        resp = conn.request("GET", "/chunked/100000?chunk=1000")
        assert resp.status == 200 and resp.chunked
        assert resp.header("content-length") is None
        assert resp.body == pattern_bytes(100000)
        assert conn.request("GET", "/bytes/5").body == pattern_bytes(5)


def test_chunked_upstream_close_delimited_for_http10(gw):
    with connect(gw.port) as conn:
        conn.send(b"GET /chunked/100000?chunk=1000 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        resp = conn.recv_response()
        assert resp.status == 200
        assert resp.header("transfer-encoding") is None and resp.header("content-length") is None
        assert resp.header("connection", "").lower() == "close"
        assert resp.body == pattern_bytes(100000)
        assert conn.eof


def test_close_delimited_upstream_response(gw):
    with connect(gw.port) as conn:
        resp = conn.request("GET", "/close/50000")
        assert resp.status == 200 and resp.chunked
        assert resp.body == pattern_bytes(50000)
        assert conn.keeps_alive(resp)
        again = conn.request("GET", "/close/10")
        assert again.body == pattern_bytes(10)
    with connect(gw.port) as conn:  # and for an HTTP/1.0 client: the close delimits it too
        conn.send(b"GET /close/3000 HTTP/1.0\r\n\r\n")
        resp = conn.recv_response()
        assert resp.status == 200 and resp.body == pattern_bytes(3000)


# --------------------------------------------------------------------------------------------
# headers


def test_forwarded_headers_replaced(gw, origin):
    resp = get(gw.port, "/echo", headers=[("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-Proto", "https"),
                                          ("X-Forwarded-Host", "evil.test")], host="shop.test:8080")
    assert resp.status == 200
    seen = resp.json()
    assert _header(seen, "x-forwarded-for") == ["127.0.0.1"]
    assert _header(seen, "x-forwarded-proto") == ["http"]
    assert _header(seen, "x-forwarded-host") == ["shop.test:8080"]
    assert _header(seen, "host") == [origin.address]
    assert _header(seen, "via") == ["1.1 litemesh"]
    assert seen["http_version"] == "1.1"
    assert resp.header("via") == "1.1 litemesh"


def test_forwarded_for_appended_when_trusted(gw_trusting):
    resp = get(gw_trusting.port, "/echo", headers=[("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-Proto", "https"),
                                                   ("X-Forwarded-Host", "front.test")], host="shop.test")
    seen = resp.json()
    assert _header(seen, "x-forwarded-for") == ["1.2.3.4, 127.0.0.1"]
    assert _header(seen, "x-forwarded-proto") == ["https"]
    assert _header(seen, "x-forwarded-host") == ["front.test"]


def test_via_appended_to_existing(gw):
    seen = get(gw.port, "/echo", headers=[("Via", "1.0 fred")]).json()
    assert _header(seen, "via") == ["1.0 fred, 1.1 litemesh"]


def test_valid_request_id_kept(gw):
    resp = get(gw.port, "/echo", headers=[("X-Request-ID", "abc-123.XYZ")])
    assert resp.header("x-request-id") == "abc-123.XYZ"
    assert _header(resp.json(), "x-request-id") == ["abc-123.XYZ"]


@pytest.mark.parametrize("bad", ["has space", "x" * 200, "semi;colon"])
def test_invalid_request_id_replaced(gw, bad):
    resp = get(gw.port, "/echo", headers=[("X-Request-ID", bad)])
    rid = resp.header("x-request-id")
    assert rid and rid != bad
    assert _header(resp.json(), "x-request-id") == [rid]


def test_generated_request_id_matches_upstream_and_is_unique(gw):
    ids = []
    for _ in range(3):
        resp = get(gw.port, "/echo")
        rid = resp.header("x-request-id")
        assert _header(resp.json(), "x-request-id") == [rid]
        ids.append(rid)
    assert len(set(ids)) == 3


def test_hop_by_hop_request_headers_stripped(gw):
    seen = get(gw.port, "/echo", headers=[
        ("Connection", "keep-alive, X-Secret"), ("X-Secret", "1"), ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"), ("Proxy-Authorization", "Basic Zm9vOmJhcg=="), ("Proxy-Connection", "keep-alive"),
        ("X-Kept", "yes")]).json()
    names = {k.lower() for k, _ in seen["headers"]}
    for name in ("connection", "x-secret", "keep-alive", "te", "proxy-authorization", "proxy-connection"):
        assert name not in names, seen["headers"]
    assert _header(seen, "x-kept") == ["yes"]


def test_hop_by_hop_response_headers_stripped(gw):
    with connect(gw.port) as conn:
        resp = conn.request("GET", "/headers?Connection=X-Foo&X-Foo=1&Keep-Alive=timeout%3D5"
                                   "&Proxy-Authenticate=Basic&X-Bar=2")
        assert resp.status == 200 and resp.body == b"ok"
        names = {k.lower() for k, _ in resp.headers}
        assert "x-foo" not in names and "keep-alive" not in names and "proxy-authenticate" not in names
        assert all("x-foo" not in v.lower() for v in resp.header_all("connection"))
        assert resp.header("x-bar") == "2"
        assert conn.keeps_alive(resp)
        assert conn.request("GET", "/bytes/3").body == pattern_bytes(3)


# --------------------------------------------------------------------------------------------
# routing


@pytest.mark.parametrize("host,body", [
    ("api.example.com", "exact"), ("API.Example.com:8080", "exact"), ("foo.example.com", "wildcard"),
    ("a.b.example.com", "wildcard"), ("example.com", "any"), ("other.test", "any"),
])
def test_host_routing(gw, host, body):
    resp = get(gw.port, "/r/host", host=host)
    assert (resp.status, resp.text) == (200, body)


def test_method_routing(gw):
    assert get(gw.port, "/r/method").text == "get"
    assert get(gw.port, "/r/method", method="POST", body=b"").text == "post"
    assert_error_answer(get(gw.port, "/r/method", method="DELETE"), 404)


def test_not_found_is_json(gw):
    resp = get(gw.port, "/no/such/route")
    data = assert_error_answer(resp, 404)
    assert resp.header("via") is None or resp.header("via") == "1.1 litemesh"
    assert data["request_id"]


def test_prefix_is_segment_bounded(gw):
    assert_error_answer(get(gw.port, "/echoX"), 404)
    assert get(gw.port, "/echo/deeper").json()["path"] == "/echo/deeper"


def test_exact_route(gw):
    assert get(gw.port, "/exact").text == "exact-path"
    assert_error_answer(get(gw.port, "/exact/more"), 404)


def test_strip_prefix_and_query_kept(gw):
    assert get(gw.port, "/api/strip/echo/x?a=1&b=%20").json()["path"] == "/echo/x?a=1&b=%20"


def test_param_rewrite_and_priority_over_prefix(gw):
    assert get(gw.port, "/users/42?q=z").json()["path"] == "/echo/user/42?q=z"
    assert get(gw.port, "/users/42/more").text == "users-prefix"


def test_prefix_rewrite_keeps_rest(gw):
    assert get(gw.port, "/v1/a/b?x=y").json()["path"] == "/echo/v2/a/b?x=y"


def test_regex_rewrite(gw):
    assert get(gw.port, "/rx/77").json()["path"] == "/echo/rx/77"
    assert_error_answer(get(gw.port, "/rx/abc"), 404)


def test_priority(gw):
    assert get(gw.port, "/prio/x").text == "high"


def test_static_routes(gw):
    deny = get(gw.port, "/deny/anything")
    assert (deny.status, deny.body) == (403, b"forbidden\n")
    assert deny.header("x-request-id")
    moved = get(gw.port, "/old")
    assert moved.status == 301 and moved.header("location") == "/new" and moved.body == b""
    maint = get(gw.port, "/maint")
    assert maint.status == 503 and maint.header("retry-after") == "120"
    assert maint.body == b"down for maintenance\n"


def test_head_of_static_route(gw):
    with connect(gw.port) as conn:
        resp = conn.request("HEAD", "/maint")
        assert resp.status == 503 and resp.body == b""
        assert resp.header("content-length") == str(len(b"down for maintenance\n"))
        assert conn.request("GET", "/deny").body == b"forbidden\n"


# --------------------------------------------------------------------------------------------
# path normalization


@pytest.mark.parametrize("path", ["/public/../admin", "/%61dmin", "/public/./../%61dmin", "/./admin"])
def test_path_normalized_before_routing(gw, path):
    assert get(gw.port, path).text == "admin"


def test_normalized_path_is_forwarded(gw):
    assert get(gw.port, "/echo/a/../b/./c?x=/../y").json()["path"] == "/echo/b/c?x=/../y"
    assert get(gw.port, "/%65cho/%7Euser").json()["path"] == "/echo/~user"


@pytest.mark.parametrize("path", ["/../x", "/echo/../../x", "/%2e%2e/admin"])
def test_path_above_root_rejected(gw, path):
    with connect(gw.port) as conn:
        resp = conn.request("GET", path)
        assert_error_answer(resp, 400)
