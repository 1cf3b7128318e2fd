"""Request and response bodies through the gateway: chunked and sized uploads, large downloads,
100-continue, body limits, streaming without buffering (RSS-bounded) and back-pressure."""
from __future__ import annotations

import hashlib
import os
import socket
import time

import pytest

from tests.support.origins import HttpOrigin, iter_pattern, sha256_of_pattern
from tests.support.rawclient import build_request, chunked_body

from .conftest import route, service
from .helpers import RssSampler, assert_error_answer, connect, get, stream_body

pytestmark = pytest.mark.timeout(60)

MiB = 1 << 20


@pytest.fixture(scope="module")
def origin():
    with HttpOrigin() as srv:
        yield srv


def _config(origin, max_body):  # type: ignore[no-untyped-def]
    return {
        "limits": {"max_body_size": max_body},
        "services": [service("main", origin, timeouts={"read": "10s", "write": "10s"})],
        "routes": [route("origin", "/", "main", hosts=["localhost"]), route("nothing", "/nothing", hosts=["localhost"], respond={"status": 404})],
    }


@pytest.fixture(scope="module")
def gw(module_gateway, origin):  # type: ignore[no-untyped-def]
    return module_gateway(_config(origin, 0), name="unlimited")


@pytest.fixture(scope="module")
def small_gw(module_gateway, origin):  # type: ignore[no-untyped-def]
    return module_gateway(_config(origin, "1MiB"), name="small")


def test_chunked_request_body(gw):
    chunks = [os.urandom(n) for n in (1, 10, 4096, 65536, 3, 200_000, 7)]
    expected = hashlib.sha256(b"".join(chunks))
    with connect(gw.port) as conn:
        resp = conn.request("POST", "/upload", body=iter(chunks))
        assert resp.status == 200
        assert resp.json() == {"body_len": sum(map(len, chunks)), "body_sha256": expected.hexdigest()}
        # the connection stays usable after a chunked upload
        again = conn.request("PUT", "/upload", body=b"abc")
        assert again.json()["body_len"] == 3


def test_chunked_request_body_with_trailers_and_slow_pieces(gw):
    body = chunked_body([b"hello ", b"world"], trailers=[("X-Trailer", "t")])
    with connect(gw.port) as conn:
        conn.send(build_request("POST", "/echo", [("Transfer-Encoding", "chunked")]))
        for i in range(0, len(body), 5):
            conn.send(body[i:i + 5])
            time.sleep(0.01)
        seen = conn.recv_response().json()
        assert seen["body_len"] == 11
        assert seen["body_sha256"] == hashlib.sha256(b"hello world").hexdigest()
        assert ["Transfer-Encoding", "chunked"] in seen["headers"]
        assert not any(k.lower() in ("x-trailer", "content-length") for k, _ in seen["headers"])


def test_content_length_body_32mib(gw):
    body = os.urandom(32 * MiB)
    with connect(gw.port, timeout=30) as conn:
        resp = conn.request("POST", "/upload", body=body)
        assert resp.status == 200
        assert resp.json() == {"body_len": len(body), "body_sha256": hashlib.sha256(body).hexdigest()}


@pytest.mark.parametrize("path", ["/bytes/%d" % (64 * MiB), "/chunked/%d?chunk=65536" % (64 * MiB),
                                  "/chunked/%d?chunk=1000" % (8 * MiB)])
def test_large_response(gw, path):
    size = int(path.split("/")[2].split("?")[0])
    with connect(gw.port, timeout=30) as conn:
        resp = conn.request("GET", path, head_only=True)
        assert resp.status == 200
        assert stream_body(conn, resp, timeout=30) == (size, sha256_of_pattern(size))
        again = conn.request("GET", "/bytes/10")  # and the connection is still in sync
        assert (again.status, again.body) == (200, b"".join(iter_pattern(10)))


def test_expect_100_continue(gw, origin):
    body = os.urandom(100_000)
    with connect(gw.port) as conn:
        conn.send(build_request("POST", "/expect", [("Expect", "100-continue"),
                                                    ("Content-Length", str(len(body)))]))
        interim = conn.recv_response(timeout=3)
        assert interim.status == 100
        conn.send(body)
        final = conn.recv_response()
        assert final.status == 200
        assert final.json() == {"body_len": len(body), "body_sha256": hashlib.sha256(body).hexdigest()}
        assert conn.buf == b""  # exactly one 100 Continue
        # the upstream never saw the Expect header
        assert not any(k.lower() == "expect" for k, _ in origin.last_request["headers"])
        assert conn.request("GET", "/bytes/4").status == 200


@pytest.mark.parametrize("path,host", [("/nothing", "localhost"), ("/upload", "no-route.test")])
def test_expect_100_continue_on_404_route(gw, path, host):
    with connect(gw.port) as conn:
        conn.send(build_request("POST", path, [("Expect", "100-continue"), ("Content-Length", "1000")], host=host))
        resp = conn.recv_response(timeout=3)
        assert resp.status == 404  # no 100 Continue first
        assert "close" in resp.header("connection", "").lower()
        assert conn.is_closed(2)


def test_body_over_limit_by_content_length(small_gw):
    with connect(small_gw.port) as conn:
        conn.send(build_request("POST", "/upload", [("Content-Length", str(MiB + 1))]))
        resp = conn.recv_response(timeout=3)
        assert_error_answer(resp, 413)
        assert conn.is_closed(2)
    with connect(small_gw.port) as conn:  # exactly at the limit is fine
        assert conn.request("POST", "/upload", body=b"z" * MiB).json()["body_len"] == MiB


def test_body_over_limit_by_chunked_stream(small_gw, origin):
    piece = b"c" * 65536
    with connect(small_gw.port) as conn:
        conn.send(build_request("POST", "/upload", [("Transfer-Encoding", "chunked")]))
        try:
            for _ in range(40):  # 2.5 MiB, over the 1 MiB limit
                conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the gateway answered and closed while we were still sending
        resp = conn.recv_response(timeout=3)
        assert_error_answer(resp, 413)
        assert conn.is_closed(2)
    with connect(small_gw.port) as conn:
        assert conn.request("GET", "/bytes/1").status == 200


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_1gib_streamed_upload_bounded_memory(gw):
    size = 1 << 30
    sha = hashlib.sha256()

    def pieces():  # type: ignore[no-untyped-def]
        for piece in iter_pattern(size, MiB):
            sha.update(piece)
            yield piece

    started = time.monotonic()
    with connect(gw.port, timeout=60) as conn, RssSampler(gw.rss) as rss:
        conn.send(build_request("POST", "/upload", [("Content-Length", str(size))]))
        for piece in pieces():
            conn.sock.sendall(piece)
            assert time.monotonic() - started < 60, "upload too slow"
        resp = conn.recv_response(timeout=30)
    assert resp.status == 200
    assert resp.json() == {"body_len": size, "body_sha256": sha.hexdigest()}
    print("RSSGROWTH", rss.baseline, rss.growth)
    assert rss.growth < 64 * MiB, f"gateway RSS grew by {rss.growth / MiB:.1f} MiB"


def test_backpressure_on_slow_reader(gw):
    size = 64 * MiB
    with connect(gw.port, timeout=30) as conn:
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        with RssSampler(gw.rss) as rss:
            conn.send(build_request("GET", f"/bytes/{size}"))
            time.sleep(1.5)  # do not read: the gateway must stop reading the upstream
        print("RSSGROWTH", rss.baseline, rss.growth)
        assert rss.growth < 64 * MiB, f"gateway RSS grew by {rss.growth / MiB:.1f} MiB"
        resp = conn.recv_response(head_only=True)
        assert resp.status == 200
        assert stream_body(conn, resp, timeout=30) == (size, sha256_of_pattern(size))


def test_pooled_upstream_reads_again_after_response_ended_under_backpressure(gw):
    """A slow client keeps the gateway's write buffer near its high-water mark up to the last
    response byte, so the upstream connection may go back to the pool with reading paused (with
    loops that pause synchronously inside write()).  The next exchange reuses it (the pool is LIFO)
    and must still get its response."""
    size = 2 * MiB
    for _ in range(3):
        with connect(gw.port, timeout=20) as conn:
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
            conn.send(build_request("GET", f"/bytes/{size}"))
            time.sleep(0.3)  # the origin has sent everything; the gateway is paused on the client
            received = 0
            while received < size:  # read slowly: the gateway's buffer stays full to the end
                data = conn.sock.recv(16 * 1024)
                assert data, "gateway closed mid-response"
                received += len(data)
                time.sleep(0.001)
        follow_up = get(gw.port, "/bytes/100", timeout=3)
        assert (follow_up.status, follow_up.body) == (200, b"".join(iter_pattern(100)))
