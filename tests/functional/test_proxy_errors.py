"""Rejections and failures: every request-reader rule answered with the JSON error shape and a
closed connection (the gateway keeps serving others), timeouts, and upstream failures."""
from __future__ import annotations

import socket
import time

import pytest

from tests.support.origins import (
    BadFramingOrigin, GarbageOrigin, HalfResponseOrigin, HangOrigin, HttpOrigin, ResetOrigin, closed_port,
    pattern_bytes,
)
from tests.support.rawclient import IncompleteResponse, build_request

from .conftest import route, service
from .helpers import assert_error_answer, connect, get

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(scope="module")
def origins():  # type: ignore[no-untyped-def]
    servers = {
        "main": HttpOrigin(), "idle": HttpOrigin(idle_close_after=0.2), "hang": HangOrigin(),
        "garbage": GarbageOrigin(), "reset": ResetOrigin(), "half": HalfResponseOrigin(),
        "badframing": BadFramingOrigin(),
    }
    for srv in servers.values():
        srv.start()
    yield servers
    for srv in servers.values():
        srv.stop()


@pytest.fixture(scope="module")
def gw(module_gateway, origins):  # type: ignore[no-untyped-def]
    services = [service("main", origins["main"]), service("refused", f"127.0.0.1:{closed_port()}")]
    routes = [route("main", "/", "main"), route("static", "/static", respond={"status": 200, "body": "s"})]
    for name in ("idle", "hang", "garbage", "reset", "half", "badframing"):
        services.append(service(name, origins[name], timeouts={"read": "1s"}))
    for name in ("idle", "hang", "garbage", "reset", "half", "badframing", "refused"):
        routes.append(route(name, f"/x/{name}", name, strip_prefix=True))
    return module_gateway({
        "limits": {"max_request_line": "2KiB", "max_header_size": "4KiB", "max_headers": 20,
                   "max_body_size": "1MiB"},
        "timeouts": {"client_header": "1s", "client_body": "1s", "keepalive": "1s"},
        "services": services,
        "routes": routes,
    })


def _still_serving(gw) -> None:  # type: ignore[no-untyped-def]
    resp = get(gw.port, "/bytes/21", timeout=3)
    assert (resp.status, resp.body) == (200, pattern_bytes(21))


def _reject(gw, raw: bytes, status: int) -> dict:  # type: ignore[no-untyped-def]
    with connect(gw.port, timeout=3) as conn:
        conn.send(raw)
        resp = conn.recv_response()
        data = assert_error_answer(resp, status)
        assert "close" in resp.header("connection", "").lower()
        assert conn.is_closed(2), "connection not closed after the error answer"
    _still_serving(gw)
    return data


def _head(*lines: str, request_line: str = "GET /echo HTTP/1.1") -> bytes:
    return ("\r\n".join([request_line, *lines]) + "\r\n\r\n").encode("latin-1")


REJECTIONS = {
    "cl-and-te": (_head("Host: a", "Content-Length: 5", "Transfer-Encoding: chunked",
                        request_line="POST /upload HTTP/1.1") + b"0\r\n\r\n", 400),
    "two-content-lengths": (_head("Host: a", "Content-Length: 5", "Content-Length: 6",
                                  request_line="POST /upload HTTP/1.1") + b"hello!", 400),
    "same-content-length-twice": (_head("Host: a", "Content-Length: 5", "Content-Length: 5",
                                        request_line="POST /upload HTTP/1.1") + b"hello", 400),
    "cl-plus": (_head("Host: a", "Content-Length: +5", request_line="POST /upload HTTP/1.1") + b"hello", 400),
    "cl-minus": (_head("Host: a", "Content-Length: -1", request_line="POST /upload HTTP/1.1"), 400),
    "cl-list": (_head("Host: a", "Content-Length: 1,2", request_line="POST /upload HTTP/1.1") + b"ab", 400),
    "cl-huge": (_head("Host: a", "Content-Length: 99999999999999999999999999",
                      request_line="POST /upload HTTP/1.1"), 400),
    "cl-19-digits": (_head("Host: a", "Content-Length: 9999999999999999999",
                           request_line="POST /upload HTTP/1.1"), 400),
    "cl-hex": (_head("Host: a", "Content-Length: 0x10", request_line="POST /upload HTTP/1.1"), 400),
    "bad-chunk-size": (_head("Host: a", "Transfer-Encoding: chunked", request_line="POST /upload HTTP/1.1")
                       + b"zz\r\nhello\r\n0\r\n\r\n", 400),
    # a chunk size beyond 64 bits declares more than any body limit
    "chunk-size-overflow": (_head("Host: a", "Transfer-Encoding: chunked", request_line="POST /upload HTTP/1.1")
                            + b"fffffffffffffffffff\r\nhello\r\n0\r\n\r\n", 413),
    "obs-fold": (_head("Host: a", "X-Folded: one", " two"), 400),
    "ctl-in-value": (_head("Host: a", "X-Bad: a\x01b"), 400),
    "nul-in-value": (_head("Host: a", "X-Bad: a\x00b"), 400),
    "bare-lf-in-value": (b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Bad: a\rb\r\n\r\n", 400),
    "space-before-colon": (_head("Host: a", "X-Bad : 1"), 400),
    "missing-host": (_head("Accept: */*"), 400),
    "two-hosts": (_head("Host: a", "Host: b"), 400),
    "host-with-space": (_head("Host: a b"), 400),
    "host-exa-mple": (_head("Host: exa mple"), 400),
    "host-unclosed-bracket": (_head("Host: [::1"), 400),
    "host-bad-port": (_head("Host: a:99999"), 400),
    "host-userinfo": (_head("Host: user@a"), 400),
    "malformed-request-line": (_head("Host: a", request_line="GET /echo HTTP/1.1 extra"), 400),
    "no-target": (_head("Host: a", request_line="GET HTTP/1.1"), 400),
    "bad-method": (_head("Host: a", request_line="G(T /echo HTTP/1.1"), 400),
    "garbage": (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40 + b"\r\n\r\n", 400),
    # a request line without a version (HTTP/0.9's form) is malformed
    "http09": (b"GET /echo\r\n\r\n", 400),
    "http2": (_head("Host: a", request_line="GET /echo HTTP/2.0"), 505),
    "te-gzip-chunked": (_head("Host: a", "Transfer-Encoding: gzip, chunked", request_line="POST /upload HTTP/1.1")
                        + b"0\r\n\r\n", 501),
    "te-not-chunked-last": (_head("Host: a", "Transfer-Encoding: chunked, gzip",
                                  request_line="POST /upload HTTP/1.1"), 400),
    "expect-other": (_head("Host: a", "Expect: something", "Content-Length: 2",
                           request_line="POST /upload HTTP/1.1"), 417),
    "request-line-too-long": (_head("Host: a", request_line=f"GET /echo?{'q' * 3000} HTTP/1.1"), 414),
    "too-many-headers": (_head("Host: a", *[f"X-H{i}: {i}" for i in range(25)]), 431),
    "header-too-large": (_head("Host: a", "X-Big: " + "v" * 5000), 431),
    "header-line-endless": (b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Big: " + b"v" * 300_000, 431),
    "relative-target": (_head("Host: a", request_line="GET echo HTTP/1.1"), 400),
    "bad-absolute-authority": (_head("Host: a", request_line="GET http://a b/echo HTTP/1.1"), 400),
    "percent-nul": (_head("Host: a", request_line="GET /echo/%00 HTTP/1.1"), 400),
    "bad-percent": (_head("Host: a", request_line="GET /echo/%zz HTTP/1.1"), 400),
}


@pytest.mark.parametrize("name", list(REJECTIONS))
def test_rejection(gw, name):
    raw, status = REJECTIONS[name]
    _reject(gw, raw, status)


def test_body_over_limit_is_413(gw):
    _reject(gw, _head("Host: a", f"Content-Length: {(1 << 20) + 1}", request_line="POST /upload HTTP/1.1"), 413)


def test_rejection_after_good_requests_on_same_connection(gw):
    with connect(gw.port, timeout=3) as conn:
        assert conn.request("GET", "/bytes/5").body == pattern_bytes(5)
        conn.send(_head("Host: a", "Content-Length: 1,2"))
        assert_error_answer(conn.recv_response(), 400)
        assert conn.is_closed(2)


def test_pipelined_good_then_malformed(gw):
    with connect(gw.port, timeout=3) as conn:
        conn.send(build_request("GET", "/slow/100") + b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Bad: \x01\r\n\r\n"
                  + build_request("GET", "/bytes/3"))
        first = conn.recv_response()
        assert (first.status, first.body) == (200, b"slow\n")
        second = conn.recv_response()
        assert_error_answer(second, 400)
        assert conn.is_closed(2)
        assert conn.buf == b""  # the third request is never answered


def test_pipelined_good_with_body_then_malformed(gw):
    with connect(gw.port, timeout=3) as conn:
        conn.send(build_request("POST", "/upload", body=b"x" * 1000) + b"BROKEN\r\n\r\n")
        first = conn.recv_response()
        assert first.status == 200 and first.json()["body_len"] == 1000
        assert_error_answer(conn.recv_response(), 400)
        assert conn.is_closed(2)


def test_slow_head_is_408(gw):
    with connect(gw.port, timeout=5) as conn:
        started = time.monotonic()
        conn.send(b"GET /echo HTTP/1.1\r\nHost: a\r\n")
        resp = conn.recv_response(timeout=4)
        elapsed = time.monotonic() - started
        assert_error_answer(resp, 408)
        assert 0.8 <= elapsed <= 3.0, elapsed
        assert conn.is_closed(2)
    _still_serving(gw)


def test_head_trickled_slowly_is_408(gw):
    """client_header bounds the whole head, not each gap: a byte every 0.2 s does not keep it alive."""
    with connect(gw.port, timeout=5) as conn:
        started = time.monotonic()
        head = b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Slow: " + b"a" * 40
        try:
            for byte in head:
                conn.send(bytes([byte]))
                time.sleep(0.1)
                if time.monotonic() - started > 3.5:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        resp = conn.recv_response(timeout=2)
        assert_error_answer(resp, 408)
        assert time.monotonic() - started <= 3.5


def test_slow_body_is_408(gw, origins):
    with connect(gw.port, timeout=5) as conn:
        conn.send(build_request("POST", "/upload", [("Content-Length", "100")]) + b"0123456789")
        started = time.monotonic()
        resp = conn.recv_response(timeout=4)
        elapsed = time.monotonic() - started
        assert_error_answer(resp, 408)
        assert 0.8 <= elapsed <= 3.0, elapsed
        assert conn.is_closed(2)
    _still_serving(gw)


def test_idle_keepalive_connection_closed(gw):
    # after a proxied answer, an upstream error and a static answer
    for path in ("/bytes/2", "/x/refused/", "/static"):
        with connect(gw.port, timeout=5) as conn:
            conn.request("GET", path)
            started = time.monotonic()
            assert conn.is_closed(3.5), f"idle connection after {path} not closed by keepalive"
            assert 0.8 <= time.monotonic() - started


# --------------------------------------------------------------------------------------------
# upstream failures


def _upstream_error(gw, path: str, status: int, *, min_s: float = 0.0, max_s: float = 3.0) -> None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    with connect(gw.port, timeout=5) as conn:
        resp = conn.request("GET", path)
        elapsed = time.monotonic() - started
        assert_error_answer(resp, status)
        assert min_s <= elapsed <= max_s, elapsed
        if conn.keeps_alive(resp):  # a kept connection must really be usable
            assert conn.request("GET", "/bytes/4").body == pattern_bytes(4)
    _still_serving(gw)


def test_connection_refused_is_502(gw):
    _upstream_error(gw, "/x/refused/", 502)


def test_read_timeout_is_504(gw):
    _upstream_error(gw, "/x/hang/", 504, min_s=0.8)


def test_garbage_is_502(gw):
    _upstream_error(gw, "/x/garbage/", 502)


def test_bad_framing_is_502(gw):
    _upstream_error(gw, "/x/badframing/", 502)


def test_reset_is_502(gw):
    _upstream_error(gw, "/x/reset/", 502)


def test_drop_is_502(gw):
    _upstream_error(gw, "/drop", 502)


def test_origin_reset_mid_request_is_502(gw):
    _upstream_error(gw, "/reset", 502)


def test_half_response_closes_client(gw):
    with connect(gw.port, timeout=5) as conn:
        started = time.monotonic()
        with pytest.raises(IncompleteResponse) as info:
            conn.request("GET", "/x/half/")
        assert time.monotonic() - started < 3
        assert info.value.data.startswith(b"HTTP/1.1 200 ")
        assert b"Content-Length: 1000" in info.value.data
        assert info.value.data.endswith(b"0123456789")
    _still_serving(gw)


def test_connect_timeout_is_504(gw, module_gateway, origins):
    """A listener whose accept queue is full drops SYNs: connecting hangs until connect timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    try:
        for _ in range(4):  # fill the accept queue (never accepted)
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(listener.getsockname())
            fillers.append(s)
        time.sleep(0.1)
        probe = socket.socket()
        probe.settimeout(0.5)
        try:
            probe.connect(listener.getsockname())
            pytest.skip("this kernel completes connections to a full accept queue")
        except (socket.timeout, TimeoutError):
            pass
        finally:
            probe.close()
        port = listener.getsockname()[1]
        gw2 = module_gateway({"services": [service("stuck", f"127.0.0.1:{port}", timeouts={"connect": "1s"})],
                              "routes": [route("all", "/", "stuck")]}, name="stuck")
        started = time.monotonic()
        resp = get(gw2.port, "/anything", timeout=5)
        assert_error_answer(resp, 504)
        assert 0.8 <= time.monotonic() - started <= 4.5  # the 1 s connect timeout (slack for busy boxes)
    finally:
        for s in fillers:
            s.close()
        listener.close()


def test_pooled_connection_closed_by_origin(gw, origins):
    idle = origins["idle"]
    accepted = idle.connections_accepted
    for i in range(20):
        resp = get(gw.port, f"/x/idle/echo?i={i}", timeout=3)
        assert resp.status == 200, (i, resp.status, resp.body)
        assert resp.json()["path"] == f"/echo?i={i}"
        time.sleep(0.5)
    assert idle.connections_accepted - accepted == 20  # each idle connection was closed by the origin


def test_pooled_connection_closed_right_before_reuse(gw, origins):
    """The origin closes idle connections after 0.2 s; requests landing around that moment must
    be retried on a fresh connection, never answered 502."""
    for i in range(20):
        resp = get(gw.port, f"/x/idle/echo?i={i}", timeout=3)
        assert resp.status == 200, (i, resp.status, resp.body)
        time.sleep(0.19 + (i % 5) * 0.005)
