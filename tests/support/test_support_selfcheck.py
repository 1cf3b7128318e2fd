"""Self-test of the origin servers and raw client, talking to each other directly."""
from __future__ import annotations

import hashlib
import socket
import time

import pytest
from websockets.sync.client import connect as ws_connect

from .origins import (
    BadFramingOrigin, GarbageOrigin, HalfResponseOrigin, HangOrigin, HttpOrigin,
    ResetOrigin, closed_port, free_port, pattern_bytes, pattern_slice, sha256_of_pattern,
)
from .rawclient import (
    IncompleteResponse, NoResponse, ProtocolError, RawConnection, build_request, request,
)

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def origin():
    with HttpOrigin() as srv:
        yield srv


def _conn(srv) -> RawConnection:
    return RawConnection("127.0.0.1", srv.port, timeout=3)


# -- basic endpoints ----------------------------------------------------------


def test_echo_reports_request_as_received(origin):
    r = request(origin.port, "POST", "/echo?q=1", [("X-B", "2"), ("X-A", "1")], body=b"hello")
    assert r.status == 200 and r.header("content-type") == "application/json"
    data = r.json()
    assert data["method"] == "POST" and data["path"] == "/echo?q=1"
    assert data["headers"][:3] == [["Host", "localhost"], ["X-B", "2"], ["X-A", "1"]]
    assert data["body_len"] == 5
    assert data["body_sha256"] == hashlib.sha256(b"hello").hexdigest()
    assert data["http_version"] == "1.1" and data["request_no"] == 1
    assert origin.requests[-1]["headers"][1] == ("X-B", "2")
    assert origin.requests[-1]["body_len"] == 5
    assert origin.connections_accepted == 1 and origin.requests_served == 1


def test_pipelining_three_requests(origin):
    with _conn(origin) as c:
        c.send(b"".join(build_request("GET", f"/echo?i={i}") for i in range(3)))
        replies = [c.recv_response().json() for _ in range(3)]
    assert [r["path"] for r in replies] == ["/echo?i=0", "/echo?i=1", "/echo?i=2"]
    assert [r["request_no"] for r in replies] == [1, 2, 3]
    assert len({r["conn_id"] for r in replies}) == 1


def test_pipelining_keeps_order_with_slow_first(origin):
    with _conn(origin) as c:
        c.send(build_request("GET", "/slow/150") + build_request("GET", "/bytes/7"))
        assert c.recv_response().body == b"slow\n"
        assert c.recv_response().body == pattern_bytes(7)


def test_chunked_upload_checksum(origin):
    pieces = [pattern_bytes(1000), b"x" * 70000, b"tail"]
    with _conn(origin) as c:
        c.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        for p in pieces:  # separate sends exercise incremental parsing
            c.send(b"%x\r\n%s\r\n" % (len(p), p))
            time.sleep(0.01)
        c.send(b"0\r\n\r\n")
        r = c.recv_response().json()
    whole = b"".join(pieces)
    assert r == {"body_len": len(whole), "body_sha256": hashlib.sha256(whole).hexdigest()}


def test_large_content_length_upload_streams(origin):
    n = 8 * 1024 * 1024
    with _conn(origin) as c:
        c.send(b"PUT /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % n)
        for off in range(0, n, 1 << 20):
            c.send(pattern_slice(off, 1 << 20))
        r = c.recv_response().json()
    assert r == {"body_len": n, "body_sha256": sha256_of_pattern(n)}


def test_bytes_chunked_and_close_bodies(origin):
    with _conn(origin) as c:
        r = c.request("GET", "/bytes/100000")
        assert r.body == pattern_bytes(100000) and not r.chunked
        assert r.header("content-length") == "100000"
        r = c.request("GET", "/chunked/10000?chunk=333")
        assert r.chunked and r.body == pattern_bytes(10000)
        assert "content-length" not in r.headers
        r = c.request("GET", "/chunked/0")
        assert r.chunked and r.body == b""
        r = c.request("GET", "/close/5000")
        assert r.body == pattern_bytes(5000) and r.header("connection") == "close"
        assert "content-length" not in r.headers
        assert c.is_closed(1)


def test_head_framing_matches_get(origin):
    with _conn(origin) as c:
        for path in ("/bytes/1234", "/chunked/1234", "/status/404", "/headers?a=b"):
            get = c.request("GET", path)
            head = c.request("HEAD", path)
            assert head.status == get.status and head.body == b""
            assert head.header("content-length") == get.header("content-length")
            assert head.header("transfer-encoding") == get.header("transfer-encoding")
        # /echo describes the HEAD request itself, so only check it is framed.
        assert int(c.request("HEAD", "/echo").header("content-length")) > 0
        # Any stray body bytes would corrupt this final response.
        assert c.request("GET", "/bytes/3").body == pattern_bytes(3)


def test_204_and_304_have_no_body(origin):
    with _conn(origin) as c:
        for code in (204, 304):
            r = c.request("GET", f"/status/{code}")
            assert r.status == code and r.body == b""
            assert "content-length" not in r.headers and "transfer-encoding" not in r.headers
        r = c.request("GET", "/status/503")
        assert r.status == 503 and r.body == b"status 503\n"
        assert c.request("GET", "/echo").json()["request_no"] == 4


def test_slowbody_sends_head_first(origin):
    with _conn(origin) as c:
        c.send(build_request("GET", "/slowbody/300"))
        t0 = time.monotonic()
        r = c.recv_response(head_only=True)
        assert time.monotonic() - t0 < 0.25 and r.header("content-length") == "9"
        c.recv_body(r)
        assert r.body == b"slowbody\n" and time.monotonic() - t0 >= 0.25


def test_hang_never_answers(origin):
    with _conn(origin) as c:
        c.send(build_request("GET", "/hang"))
        with pytest.raises(TimeoutError):
            c.recv_response(timeout=0.3)
        assert not c.is_closed(0.1)
        assert origin.open_connections == 1


def test_headers_endpoint_adds_hop_by_hop(origin):
    r = request(origin.port, "GET", "/headers?Connection=X-Foo&X-Foo=1&Keep-Alive=timeout%3D5")
    assert r.status == 200 and r.body == b"ok"
    assert r.header("connection") == "X-Foo" and r.header("x-foo") == "1"
    assert r.header("keep-alive") == "timeout=5"


def test_drop_and_reset(origin):
    with _conn(origin) as c:
        c.send(build_request("GET", "/drop"))
        with pytest.raises(NoResponse):
            c.recv_response()
        assert not c.reset
    with _conn(origin) as c:
        c.send(build_request("GET", "/reset"))
        assert c.is_closed(2) and c.reset


def test_expect_100_continue(origin):
    with _conn(origin) as c:
        c.send(b"POST /expect HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
               b"Expect: 100-continue\r\n\r\n")
        interim = c.recv_response()
        assert interim.status == 100
        c.send(b"abc")
        assert c.recv_response().json()["body_len"] == 3
        # Without the header there is no interim response.
        r = c.request("POST", "/expect", body=b"xy")
        assert r.status == 200 and r.json()["body_len"] == 2


def test_http10_closes(origin):
    with _conn(origin) as c:
        c.send(b"GET /echo HTTP/1.0\r\n\r\n")
        r = c.recv_response()
        assert r.json()["http_version"] == "1.0" and r.header("connection") == "close"
        assert c.is_closed(1)


def test_unknown_path_404(origin):
    assert request(origin.port, "GET", "/nope").status == 404


# -- connection management options ---------------------------------------------


def test_idle_close_after():
    with HttpOrigin(idle_close_after=0.2) as srv, _conn(srv) as c:
        assert c.request("GET", "/echo").status == 200
        assert not c.is_closed(0.05)
        t0 = time.monotonic()
        assert c.is_closed(2)
        assert time.monotonic() - t0 < 1.0
        deadline = time.monotonic() + 1
        while srv.open_connections and time.monotonic() < deadline:
            time.sleep(0.01)
        assert srv.open_connections == 0


def test_max_requests_per_conn():
    with HttpOrigin(max_requests_per_conn=2) as srv, _conn(srv) as c:
        assert c.request("GET", "/echo").header("connection") is None
        assert c.request("GET", "/echo").header("connection") == "close"
        assert c.is_closed(1)


def test_stop_closes_open_connections_quickly():
    srv = HttpOrigin().start()
    c = _conn(srv)
    c.send(build_request("GET", "/hang"))
    assert srv.wait_for_requests(1)
    t0 = time.monotonic()
    srv.stop()
    assert time.monotonic() - t0 < 2
    assert c.is_closed(1)
    c.close()


# -- WebSocket ---------------------------------------------------------------------


def test_websocket_echo_text_and_binary(origin):
    with ws_connect(f"ws://{origin.address}/ws", open_timeout=2, close_timeout=2) as ws:
        ws.send("hello")
        assert ws.recv(timeout=2) == "hello"
        blob = pattern_bytes(100 * 1024)
        ws.send(blob)
        assert ws.recv(timeout=2) == blob
        ws.send(["frag", "mented"])  # fragmented message is echoed as frames
        assert ws.recv(timeout=2) == "fragmented"


def test_ws_without_upgrade_is_426(origin):
    assert request(origin.port, "GET", "/ws").status == 426


# -- misbehaving origins ----------------------------------------------------------


def test_garbage_origin():
    with GarbageOrigin() as srv, RawConnection("127.0.0.1", srv.port, timeout=2) as c:
        c.send(build_request("GET", "/"))
        with pytest.raises(ProtocolError):
            c.recv_response()
    with GarbageOrigin(payload=b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi") as srv:
        assert request(srv.port, "GET", "/").body == b"hi"


def test_bad_framing_origin_sends_both_headers():
    with BadFramingOrigin() as srv:
        r = request(srv.port, "GET", "/")
        assert r.header("content-length") == "5" and r.chunked and r.body == b"hello"


def test_half_response_origin():
    with HalfResponseOrigin() as srv, RawConnection("127.0.0.1", srv.port, timeout=2) as c:
        c.send(build_request("GET", "/"))
        with pytest.raises(IncompleteResponse) as exc:
            c.recv_response()
        assert exc.value.data.endswith(b"0123456789")


def test_reset_origin():
    with ResetOrigin() as srv, RawConnection("127.0.0.1", srv.port, timeout=2) as c:
        c.send(build_request("GET", "/"))
        assert c.is_closed(2) and c.reset
        assert srv.connections_accepted == 1


def test_hang_origin():
    with HangOrigin() as srv, RawConnection("127.0.0.1", srv.port, timeout=2) as c:
        c.send(build_request("GET", "/"))
        assert not c.is_closed(0.2)
        with pytest.raises(TimeoutError):
            c.recv_response(timeout=0.1)


def test_free_and_closed_ports():
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", closed_port()), timeout=1)
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
