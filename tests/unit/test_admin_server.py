"""AdminServer over real sockets on 127.0.0.1, with a fake AdminApp.

The server runs on an event loop in a background thread (once on stdlib asyncio, once on uvloop);
tests talk to it with the blocking raw client, so every byte on the wire is what a real client sees.
"""
from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any, Callable

import pytest
import uvloop

import litemesh.admin.server as admin_module
from litemesh.admin import AdminServer
from tests.support.rawclient import RawConnection, Response, build_request, request

TOKEN = "s3cret-admin-token-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
METRICS = ("# HELP litemesh_requests_total Requests.\n"
           "# TYPE litemesh_requests_total counter\nlitemesh_requests_total 7\n")


class FakeApp:
    """An AdminApp whose answers, failures and reload pace the test controls."""

    def __init__(self) -> None:
        self.state: Any = {"workers": 2, "generation": 1}
        self.is_ready = True
        self.metrics_text = METRICS
        self.reload_result: Any = (True, {"generation": 2})
        self.fail: set[str] = set()  # endpoints that raise
        self.gate: asyncio.Event | None = None  # when set, reload() waits for it
        self.reloads_started = 0
        self.reloads_finished = 0
        self.reloads_cancelled = 0

    def _check(self, name: str) -> None:
        if name in self.fail:
            raise RuntimeError(f"{name} exploded")

    def status(self) -> dict[str, Any]:
        self._check("status")
        return self.state

    def ready(self) -> bool:
        self._check("ready")
        return self.is_ready

    def metrics(self) -> str:
        self._check("metrics")
        return self.metrics_text

    async def reload(self) -> tuple[bool, dict[str, Any]]:
        self.reloads_started += 1
        try:
            if self.gate is not None:
                await self.gate.wait()
        except asyncio.CancelledError:
            self.reloads_cancelled += 1
            raise
        self._check("reload")
        self.reloads_finished += 1
        return self.reload_result


class LoopThread:
    def __init__(self, factory: Callable[[], asyncio.AbstractEventLoop]) -> None:
        self.loop = factory()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def stop(self) -> None:
        async def _drain() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(_drain())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class Admin:
    def __init__(self, lt: LoopThread, app: FakeApp, **kwargs: Any) -> None:
        self.lt = lt
        self.app = app
        self.server = AdminServer(app, **kwargs)
        self.port: int = lt.run(self.server.start("127.0.0.1", 0))

    def get(self, path: str, method: str = "GET", headers: Any = None, body: bytes | None = None) -> Response:
        return request(self.port, method, path, headers, body)

    def connect(self, timeout: float = 5) -> RawConnection:
        return RawConnection("127.0.0.1", self.port, timeout=timeout)

    def close(self) -> None:
        self.lt.run(self.server.close())

    def open_gate(self) -> None:
        assert self.app.gate is not None
        self.lt.call(self.app.gate.set)


@pytest.fixture(params=["asyncio", "uvloop"])
def lt(request: pytest.FixtureRequest):
    factory = asyncio.new_event_loop if request.param == "asyncio" else uvloop.new_event_loop
    thread = LoopThread(factory)
    yield thread
    thread.stop()


@pytest.fixture
def app() -> FakeApp:
    return FakeApp()


@pytest.fixture
def make_admin(lt: LoopThread, app: FakeApp):
    made: list[Admin] = []

    def make(**kwargs: Any) -> Admin:
        admin = Admin(lt, app, **kwargs)
        made.append(admin)
        return admin

    yield make
    for admin in made:
        admin.close()


@pytest.fixture
def admin(make_admin) -> Admin:
    return make_admin()


@pytest.fixture
def secured(make_admin) -> Admin:
    return make_admin(token=TOKEN)


def wait_until(predicate: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


def assert_error(resp: Response, status: int, request_id: str | None = None) -> dict[str, Any]:
    assert resp.status == status
    assert resp.header("content-type") == "application/json"
    body = resp.json()
    assert isinstance(body["error"], str) and body["error"]
    assert body["status"] == status
    assert body["request_id"] == request_id
    return body


# -- endpoints ---------------------------------------------------------------------------------
def test_status_is_the_apps_json(admin: Admin) -> None:
    resp = admin.get("/status")
    assert resp.status == 200
    assert resp.header("content-type") == "application/json"
    assert resp.header("cache-control") == "no-store"
    assert resp.header("date")
    assert resp.json() == {"workers": 2, "generation": 1}


def test_ready_200_then_503(admin: Admin) -> None:
    resp = admin.get("/ready")
    assert (resp.status, resp.json()) == (200, {"ready": True})
    admin.app.is_ready = False
    resp = admin.get("/ready")
    assert (resp.status, resp.json()) == (503, {"ready": False})


def test_metrics_prometheus_text(admin: Admin) -> None:
    resp = admin.get("/metrics")
    assert resp.status == 200
    assert resp.header("content-type") == "text/plain; version=0.0.4; charset=utf-8"
    assert resp.text == METRICS


def test_reload_ok(admin: Admin) -> None:
    resp = admin.get("/reload", "POST")
    assert resp.status == 200
    assert resp.json() == {"ok": True, "generation": 2}
    assert admin.app.reloads_finished == 1


def test_reload_not_ok_is_422_with_details(admin: Admin) -> None:
    admin.app.reload_result = (False, {"error": "routes[0]: unknown service 'x'", "issues": ["a", "b"]})
    body = assert_error(admin.get("/reload", "POST"), 422)
    assert body == {"error": "routes[0]: unknown service 'x'", "status": 422, "request_id": None,
                    "issues": ["a", "b"]}


def test_reload_not_ok_without_message(admin: Admin) -> None:
    admin.app.reload_result = (False, {"status": 999, "generation": 1})
    body = assert_error(admin.get("/reload", "POST"), 422)
    assert body == {"error": "reload failed", "status": 422, "request_id": None, "generation": 1}


@pytest.mark.parametrize("path", ["/status", "/ready", "/metrics"])
def test_head_has_get_headers_without_body(admin: Admin, path: str) -> None:
    with admin.connect() as conn:
        got = conn.request("GET", path)
        head = conn.request("HEAD", path)
        assert head.status == got.status == 200
        assert head.body == b""
        assert head.header("content-length") == got.header("content-length") == str(len(got.body))
        assert head.header("content-type") == got.header("content-type")
        # no stray body bytes: the next response on the connection parses cleanly
        assert conn.request("GET", path).body == got.body


def test_unknown_path_404(admin: Admin) -> None:
    assert_error(admin.get("/nope"), 404)
    assert_error(admin.get("/status/"), 404)


@pytest.mark.parametrize("method, path, allow", [
    ("POST", "/status", "GET, HEAD"),
    ("DELETE", "/ready", "GET, HEAD"),
    ("PUT", "/metrics", "GET, HEAD"),
    ("GET", "/reload", "POST"),
])
def test_wrong_method_405_with_allow(admin: Admin, method: str, path: str, allow: str) -> None:
    resp = admin.get(path, method)
    assert_error(resp, 405)
    assert resp.header("allow") == allow
    assert admin.app.reloads_started == 0


def test_head_reload_is_405_without_body(admin: Admin) -> None:
    resp = admin.get("/reload", "HEAD")
    assert resp.status == 405 and resp.body == b""
    assert resp.header("allow") == "POST"


def test_query_string_and_absolute_form(admin: Admin) -> None:
    assert admin.get("/status?verbose=1").status == 200
    assert admin.get("http://localhost/ready").json() == {"ready": True}


def test_request_id_echoed_in_errors(admin: Admin) -> None:
    resp = admin.get("/nope", headers={"X-Request-ID": "abc-123"})
    assert_error(resp, 404, request_id="abc-123")
    assert resp.header("x-request-id") == "abc-123"


# -- app failures --------------------------------------------------------------------------------
@pytest.mark.parametrize("endpoint, method", [
    ("status", "GET"), ("ready", "GET"), ("metrics", "GET"), ("reload", "POST"),
])
def test_app_exception_is_500_and_server_keeps_serving(admin: Admin, endpoint: str, method: str) -> None:
    admin.app.fail.add(endpoint)
    with admin.connect() as conn:
        assert_error(conn.request(method, f"/{endpoint}"), 500)
        admin.app.fail.clear()
        assert conn.request(method, f"/{endpoint}").status == 200  # same connection still usable
    assert admin.get("/status").status == 200


def test_unserialisable_status_is_500(admin: Admin) -> None:
    admin.app.state = {"oops": object()}
    assert_error(admin.get("/status"), 500)
    admin.app.state = {"fine": True}
    assert admin.get("/status").json() == {"fine": True}


def test_bad_reload_result_is_500(admin: Admin) -> None:
    admin.app.reload_result = "not a tuple"
    assert_error(admin.get("/reload", "POST"), 500)


def test_json_fallback_without_orjson(admin: Admin, monkeypatch: pytest.MonkeyPatch) -> None:
    sample = {"a": [1, 2.5, None, True], "b": {"c": "é"}}
    assert admin_module._dumps_json(sample) == admin_module._dumps_orjson(sample)
    monkeypatch.setattr(admin_module, "_dumps", admin_module._dumps_json)
    assert admin.get("/status").json() == {"workers": 2, "generation": 1}
    assert_error(admin.get("/nope"), 404)


# -- token ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("method, path", [
    ("GET", "/status"), ("GET", "/metrics"), ("POST", "/reload"), ("HEAD", "/status"),
    ("GET", "/nope"), ("POST", "/ready"),
])
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer", f"Bearer {TOKEN}x"])
def test_token_missing_or_wrong_is_401(secured: Admin, method: str, path: str, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    resp = secured.get(path, method, headers)
    assert resp.status == 401
    assert resp.header("www-authenticate") == "Bearer"
    if method != "HEAD":
        assert_error(resp, 401)
    assert secured.app.reloads_started == 0


def test_token_accepted(secured: Admin) -> None:
    assert secured.get("/status", headers=AUTH).json() == {"workers": 2, "generation": 1}
    assert secured.get("/metrics", headers={"authorization": f"bearer  {TOKEN}"}).text == METRICS
    assert secured.get("/reload", "POST", AUTH).status == 200
    assert_error(secured.get("/nope", headers=AUTH), 404)  # paths are revealed only to token holders
    assert_error(secured.get("/ready", "POST", AUTH), 405)


def test_two_authorization_fields_are_refused(secured: Admin) -> None:
    resp = secured.get("/status", headers=[("Authorization", f"Bearer {TOKEN}"), ("Authorization", "Bearer x")])
    assert resp.status == 401


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_ready_is_exempt_from_token(secured: Admin, method: str) -> None:
    resp = secured.get("/ready", method)
    assert resp.status == 200
    secured.app.is_ready = False
    assert secured.get("/ready", method, {"Authorization": "Bearer wrong"}).status == 503


def test_empty_token_is_refused(app: FakeApp) -> None:
    with pytest.raises(ValueError):
        AdminServer(app, token="")


# -- connection handling ---------------------------------------------------------------------------
def test_keep_alive_serves_many_requests_on_one_connection(secured: Admin) -> None:
    with secured.connect() as conn:
        for _ in range(3):
            assert conn.request("GET", "/status", AUTH).status == 200
            assert conn.request("GET", "/ready").status == 200
            assert conn.request("GET", "/status").status == 401  # an error that keeps the connection
            assert conn.request("GET", "/nope", AUTH).status == 404
            assert conn.request("POST", "/reload", AUTH, b"ignored body").status == 200
            resp = conn.request("GET", "/metrics", AUTH)
            assert resp.status == 200 and conn.keeps_alive(resp)
        assert not conn.is_closed(0.05)


def test_pipelined_requests_answered_in_order(admin: Admin) -> None:
    with admin.connect() as conn:
        conn.send(build_request("GET", "/status") + build_request("POST", "/reload", body=b"x")
                  + build_request("GET", "/nope") + build_request("GET", "/ready"))
        assert conn.recv_response().json() == {"workers": 2, "generation": 1}
        assert conn.recv_response().json() == {"ok": True, "generation": 2}
        assert conn.recv_response().status == 404
        assert conn.recv_response().json() == {"ready": True}


def test_connection_close(admin: Admin) -> None:
    with admin.connect() as conn:
        resp = conn.request("GET", "/status", {"Connection": "close"})
        assert resp.status == 200
        assert resp.header("connection") == "close"
        assert conn.is_closed()


def test_http10(admin: Admin) -> None:
    with admin.connect() as conn:
        conn.send(build_request("GET", "/ready", host=None, version="HTTP/1.0"))
        resp = conn.recv_response()
        assert resp.status == 200 and resp.header("connection") == "close"
        assert conn.is_closed()
    with admin.connect() as conn:
        for _ in range(2):
            conn.send(build_request("GET", "/status", {"Connection": "keep-alive"}, host=None, version="HTTP/1.0"))
            resp = conn.recv_response()
            assert resp.status == 200 and resp.header("connection") == "keep-alive"
        assert not conn.is_closed(0.05)


def test_chunked_body_is_read_and_ignored(admin: Admin) -> None:
    with admin.connect() as conn:
        assert conn.request("POST", "/reload", body=iter([b"a" * 1000, b"b" * 1000])).status == 200
        assert conn.request("GET", "/status").status == 200


def test_expect_100_continue(admin: Admin) -> None:
    with admin.connect() as conn:
        conn.send(build_request("POST", "/reload", {"Expect": "100-continue", "Content-Length": "3"}))
        assert conn.recv_response().status == 100
        conn.send(b"abc")
        assert conn.recv_response().status == 200


def test_body_too_large_is_413(admin: Admin) -> None:
    with admin.connect() as conn:
        conn.send(build_request("POST", "/reload", {"Content-Length": str(1 << 20)}))
        assert_error(conn.recv_response(), 413)
        assert conn.is_closed()
    with admin.connect() as conn:  # chunked: found out while reading
        conn.send(build_request("POST", "/reload", body=iter([b"x" * 16384] * 5)))
        assert_error(conn.recv_response(), 413)
        assert conn.is_closed()
    assert admin.app.reloads_started == 0
    assert admin.get("/status").status == 200


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n",
    b"GET /status HTTP/1.1\r\n\r\n",  # no Host
    b"GET /status HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n",
    b"GET /status HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"GET /status HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 40000 + b"\r\n\r\n",
])
def test_malformed_request_is_400_json_then_server_still_serves(admin: Admin, raw: bytes) -> None:
    with admin.connect() as conn:
        conn.send(raw)
        resp = conn.recv_response()
        assert 400 <= resp.status < 500
        assert_error(resp, resp.status)
        assert resp.header("connection") == "close"
        assert conn.is_closed()
    assert admin.get("/status").status == 200


def test_malformed_after_good_request_answers_both(admin: Admin) -> None:
    with admin.connect() as conn:
        conn.send(build_request("GET", "/ready") + b"NOT HTTP AT ALL\r\n\r\n")
        assert conn.recv_response().status == 200
        assert_error(conn.recv_response(), 400)
        assert conn.is_closed()


def test_upgrade_request_is_answered_then_closed(admin: Admin) -> None:
    with admin.connect() as conn:
        conn.send(build_request("GET", "/status", {"Connection": "Upgrade", "Upgrade": "websocket"}) + b"\x00\x01")
        resp = conn.recv_response()
        assert resp.status == 200 and resp.header("connection") == "close"
        assert conn.is_closed()


def test_idle_connection_closed_after_header_timeout(make_admin) -> None:
    admin = make_admin(header_timeout=0.3)
    with admin.connect() as conn:
        assert conn.request("GET", "/ready").status == 200
        assert not conn.is_closed(0.1)
        assert conn.is_closed(2)
    with admin.connect() as conn:  # never sent a byte
        assert conn.is_closed(2)


def test_slow_head_is_408(make_admin) -> None:
    admin = make_admin(header_timeout=0.3)
    with admin.connect() as conn:
        conn.send(b"GET /status HTTP/1.1\r\nHost: x\r\n")
        assert_error(conn.recv_response(), 408)
        assert conn.is_closed()
    assert admin.get("/status").status == 200


# -- reload concurrency ----------------------------------------------------------------------------
def test_slow_reload_does_not_block_other_requests(admin: Admin) -> None:
    admin.app.gate = asyncio.Event()
    with admin.connect() as slow:
        slow.send(build_request("POST", "/reload") + build_request("GET", "/ready"))
        wait_until(lambda: admin.app.reloads_started == 1)
        started = time.monotonic()
        for path in ("/status", "/ready", "/metrics"):
            assert admin.get(path).status == 200
        assert time.monotonic() - started < 2
        assert admin.app.reloads_finished == 0
        admin.open_gate()
        assert slow.recv_response().json() == {"ok": True, "generation": 2}
        assert slow.recv_response().json() == {"ready": True}  # pipelined behind the reload, in order


def test_concurrent_reloads_both_answered_one_at_a_time(admin: Admin) -> None:
    admin.app.gate = asyncio.Event()
    with admin.connect() as first, admin.connect() as second:
        first.send(build_request("POST", "/reload"))
        wait_until(lambda: admin.app.reloads_started == 1)
        second.send(build_request("POST", "/reload"))
        time.sleep(0.1)
        assert admin.app.reloads_started == 1  # the second waits for the first
        admin.open_gate()
        assert first.recv_response().status == 200
        assert second.recv_response().status == 200
    assert admin.app.reloads_finished == 2


def test_reload_survives_client_hanging_up(admin: Admin) -> None:
    admin.app.gate = asyncio.Event()
    with admin.connect() as conn:
        conn.send(build_request("POST", "/reload"))
        wait_until(lambda: admin.app.reloads_started == 1)
    time.sleep(0.05)
    admin.open_gate()
    wait_until(lambda: admin.app.reloads_finished == 1)
    assert admin.app.reloads_cancelled == 0
    assert admin.get("/status").status == 200


# -- lifecycle -------------------------------------------------------------------------------------
def test_start_returns_bound_port_and_refuses_second_start(lt: LoopThread, admin: Admin) -> None:
    assert admin.port > 0 and admin.server.port == admin.port
    with pytest.raises(RuntimeError):
        lt.run(admin.server.start("127.0.0.1", 0))


def test_start_on_busy_port_raises(lt: LoopThread, app: FakeApp, admin: Admin) -> None:
    other = AdminServer(app)
    with pytest.raises(OSError):
        lt.run(other.start("127.0.0.1", admin.port))


def test_close_stops_accepting_and_closes_idle(admin: Admin) -> None:
    with admin.connect() as idle:
        assert idle.request("GET", "/status").status == 200
        admin.close()
        assert idle.is_closed()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", admin.port), timeout=1).close()


def test_close_lets_busy_reload_answer(lt: LoopThread, admin: Admin) -> None:
    admin.app.gate = asyncio.Event()
    with admin.connect() as conn:
        conn.send(build_request("POST", "/reload"))
        wait_until(lambda: admin.app.reloads_started == 1)
        closing = asyncio.run_coroutine_threadsafe(admin.server.close(), lt.loop)
        time.sleep(0.1)
        assert not closing.done()
        admin.open_gate()
        resp = conn.recv_response()
        assert resp.status == 200 and resp.header("connection") == "close"
        assert conn.is_closed()
        closing.result(5)


def test_close_aborts_after_timeout(make_admin) -> None:
    admin = make_admin(close_timeout=0.2)
    admin.app.gate = asyncio.Event()  # never opened
    with admin.connect() as conn:
        conn.send(build_request("POST", "/reload"))
        wait_until(lambda: admin.app.reloads_started == 1)
        started = time.monotonic()
        admin.close()
        assert time.monotonic() - started < 3
        assert conn.is_closed()
    assert admin.app.reloads_cancelled == 1
