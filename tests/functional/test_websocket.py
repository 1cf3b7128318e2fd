"""WebSocket upgrades tunnelled through the gateway to the origin's /ws echo."""
from __future__ import annotations

import os

import pytest
from websockets.sync.client import connect as ws_connect

from tests.support.origins import HttpOrigin, pattern_bytes
from tests.support.rawclient import build_request

from .conftest import route, service
from .helpers import connect, get

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(scope="module")
def origin():
    with HttpOrigin() as srv:
        yield srv


@pytest.fixture(scope="module")
def gw(module_gateway, origin):  # type: ignore[no-untyped-def]
    return module_gateway({"services": [service("main", origin)], "routes": [route("all", "/", "main")]})


def _ws(gw, path="/ws", **kwargs):  # type: ignore[no-untyped-def]
    return ws_connect(f"ws://127.0.0.1:{gw.port}{path}", proxy=None, compression=None, open_timeout=5,
                      close_timeout=5, **kwargs)


def test_text_echo_and_clean_close(gw, origin):
    with _ws(gw) as ws:
        ws.send("hello through the gateway")
        assert ws.recv(timeout=5) == "hello through the gateway"
        ws.send("héllo ✓")
        assert ws.recv(timeout=5) == "héllo ✓"
        ws.close()
        assert ws.close_code == 1000
    seen = origin.last_request
    assert seen["path"] == "/ws"
    names = {k.lower(): v for k, v in seen["headers"]}
    assert names["upgrade"].lower() == "websocket" and "upgrade" in names["connection"].lower()
    assert names["via"] == "1.1 litemesh" and names["x-forwarded-for"] == "127.0.0.1"


def test_binary_1mib_echo(gw):
    payload = os.urandom(1 << 20)
    with _ws(gw, max_size=None) as ws:
        ws.send(payload)
        assert ws.recv(timeout=10) == payload
        ws.close()
        assert ws.close_code == 1000


def test_many_messages(gw):
    with _ws(gw) as ws:
        for i in range(100):
            message = f"message {i} " + "x" * (i * 37)
            ws.send(message if i % 2 else message.encode())
            assert ws.recv(timeout=5) == (message if i % 2 else message.encode())
        ws.close()
        assert ws.close_code == 1000


def test_pipelined_burst(gw):
    with _ws(gw) as ws:
        for i in range(100):
            ws.send(f"burst {i}")
        assert [ws.recv(timeout=5) for _ in range(100)] == [f"burst {i}" for i in range(100)]
        ws.ping(b"p").wait(5)
        ws.close()


def test_gateway_serves_normally_after_tunnels(gw):
    with _ws(gw) as ws:
        ws.send("x")
        assert ws.recv(timeout=5) == "x"
        resp = get(gw.port, "/bytes/9")
        assert (resp.status, resp.body) == (200, pattern_bytes(9))
        ws.send("y")
        assert ws.recv(timeout=5) == "y"


def test_upgrade_refused_by_origin(gw):
    headers = [("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"),
               ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")]
    with connect(gw.port, timeout=5) as conn:
        conn.send(build_request("GET", "/not-a-socket", headers) + b"\x81\x85junk!")
        resp = conn.recv_response()
        assert resp.status == 404 and resp.body == b"not found\n"
        assert "close" in resp.header("connection", "").lower()
        assert resp.header("upgrade") is None
        assert conn.is_closed(2)
    assert get(gw.port, "/bytes/2").body == pattern_bytes(2)
