"""Targets, header helpers, the writer, path rewrites, the balancer order and Deadline."""
from __future__ import annotations

import asyncio
import re
from collections import Counter

import orjson
import pytest

from litemesh.errors import ClientError, UpstreamError, bad_request
from litemesh.filters.context import RequestContext
from litemesh.filters.transform import PathRewrite
from litemesh.http import writer
from litemesh.http.headers import (
    HOP_BY_HOP, RequestIdFactory, connection_tokens, host_without_port, valid_host, valid_request_id,
)
from litemesh.http.target import lenient_reading, normalize_path, routing_paths, split_target
from litemesh.proxy.router import pattern_segments
from litemesh.proxy.service import RoundRobin, Target, smooth_weighted_order
from litemesh.proxy.deadline import SLOT_SECONDS as RESOLUTION, Deadline, TimerWheel


def assert_400(func, *args):
    with pytest.raises(ClientError) as info:
        func(*args)
    assert info.value.status == 400
    assert info.value.kind == "bad_request"


# -- split_target ---------------------------------------------------------------------------------
@pytest.mark.parametrize("target,expected", [
    (b"/", (b"/", b"", None)),
    (b"/a/b", (b"/a/b", b"", None)),
    (b"/a/b?x=1&y=2", (b"/a/b", b"?x=1&y=2", None)),
    (b"/a?", (b"/a", b"?", None)),
    (b"/a?x=/b?c", (b"/a", b"?x=/b?c", None)),
    (b"//double/slash", (b"//double/slash", b"", None)),
    (b"http://example.com/p?q=1", (b"/p", b"?q=1", b"example.com")),
    (b"http://example.com:8080/p", (b"/p", b"", b"example.com:8080")),
    (b"https://example.com/", (b"/", b"", b"example.com")),
    (b"HTTPS://Example.COM/X", (b"/X", b"", b"Example.COM")),
    (b"http://example.com", (b"/", b"", b"example.com")),
    (b"http://example.com?q", (b"/", b"?q", b"example.com")),
    (b"http://[::1]:8080/v6", (b"/v6", b"", b"[::1]:8080")),
])
def test_split_target(target, expected):
    assert split_target(target) == expected


@pytest.mark.parametrize("target", [
    b"", b"*", b"a/b", b"ftp://example.com/", b"http:/x", b"http//x/", b"httpx://a/", b"http://", b"https://",
    b"http:///p", b"http://user@example.com/", b"http://u:p@example.com/p", b"example.com:443",
])
def test_split_target_bad_forms(target):
    assert_400(split_target, target)


# -- normalize_path -------------------------------------------------------------------------------
@pytest.mark.parametrize("path,expected", [
    (b"/", b"/"),
    (b"/a/b/c", b"/a/b/c"),
    (b"/a/./b", b"/a/b"),
    (b"/a/../b", b"/b"),
    (b"/public/../admin", b"/admin"),
    (b"/a/b/../../c", b"/c"),
    (b"/./a", b"/a"),
    (b"/a/.b/..c/...", b"/a/.b/..c/..."),  # dots inside names are not dot-segments
    (b"/a//b", b"/a/b"),
    # trailing dot segments keep a trailing slash; a trailing slash is kept as is
    (b"/a/b/..", b"/a/"),
    (b"/a/.", b"/a/"),
    (b"/a/b/", b"/a/b/"),
    (b"/a/./", b"/a/"),
    (b"/.", b"/"),
    (b"/a/..", b"/"),
    # percent-decoding of unreserved characters only
    (b"/%61dmin", b"/admin"),
    (b"/%41%5A%30%39%2D%2E%5F%7E", b"/AZ09-._~"),
    (b"/%7e%2d", b"/~-"),
    (b"/a%20b", b"/a%20b"),
    (b"/a%2fb", b"/a%2Fb"),  # %2F stays encoded (upper-cased): decoding would add a segment
    (b"/a%2Fb", b"/a%2Fb"),
    (b"/%c3%a9", b"/%C3%A9"),
    (b"/%3f%23%25", b"/%3F%23%25"),
    # decoding happens before dot-segment removal
    (b"/public/%2e%2e/admin", b"/admin"),
    (b"/public/%2E/x", b"/public/x"),
    (b"/a/%2e%2E/", b"/"),
])
def test_normalize_path(path, expected):
    assert normalize_path(path) == expected


def test_normalize_path_returns_same_object_when_nothing_to_do():
    path = b"/already/normal?"
    assert normalize_path(path) is path


@pytest.mark.parametrize("path", [
    b"/%", b"/%4", b"/a%", b"/%zz", b"/%g0", b"/%0g", b"/%-1", b"/% 1", b"/%%41",
])
def test_normalize_path_invalid_percent(path):
    assert_400(normalize_path, path)


@pytest.mark.parametrize("path", [b"/%00", b"/a%00b", b"/a/%00/b"])
def test_normalize_path_nul(path):
    assert_400(normalize_path, path)


@pytest.mark.parametrize("path", [b"/..", b"/../a", b"/a/../..", b"/a/../../b", b"/%2e%2e/admin", b"/./../x"])
def test_normalize_path_escaping_root(path):
    assert_400(normalize_path, path)


@pytest.mark.parametrize("path,expected", [
    (b"//a///b//", b"/a/b/"), (b"/a/.//../b", b"/b"), (b"//%2e%2e//x", None),
])
def test_normalize_path_merges_slashes_before_dot_segments(path, expected):
    if expected is None:
        assert_400(normalize_path, path)
    else:
        assert normalize_path(path) == expected


def test_merge_slashes_can_be_turned_off():
    assert normalize_path(b"/a//b", merge_slashes=False) == b"/a//b"
    assert normalize_path(b"/a//b/../c", merge_slashes=False) == b"/a//c"


@pytest.mark.parametrize("path,expected", [
    (b"/a/b", None), (b"/a%20b", None), (b"/a/b?x", None),  # nothing a backend could read differently
    (b"/x/..%2Fadmin", b"/admin"),  # an encoded slash a backend decodes
    (b"/x/..%5Cadmin", b"/admin"),  # an encoded backslash
    (b"/x/..\\admin", b"/admin"),  # a raw backslash (Windows separators)
    (b"/admin;jsessionid=1", b"/admin"),  # servlet path parameters
    (b"/x/..;/admin", b"/admin"),  # Tomcat's "..;" traversal
    (b"/api/projects/group%2Fname", b"/api/projects/group/name"),
    (b"/a;x/b;y/c", b"/a/b/c"),
])
def test_lenient_reading(path, expected):
    assert lenient_reading(path) == expected


@pytest.mark.parametrize("path", [b"/a/b", b"/a//b", b"/%61/b;c", b"/a\\b", b"/x/./y", b"/q?x"])
def test_routing_paths_is_normalize_then_lenient(path):
    normalized = normalize_path(path)
    assert routing_paths(path) == (normalized, lenient_reading(normalized))


@pytest.mark.parametrize("path", [b"/..%2F..%2Fetc", b"/a/..;/..;/b"])
def test_lenient_reading_above_the_root_is_400(path):
    assert_400(lenient_reading, path)


# -- header helpers -------------------------------------------------------------------------------
@pytest.mark.parametrize("host", [
    b"a", b"example.com", b"EXAMPLE.com.", b"a-b.c_d", b"a:1", b"a:80", b"a:65535", b"1.2.3.4", b"1.2.3.4:8080",
    b"[::1]", b"[::1]:443", b"[2001:db8::1]", b"[::ffff:1.2.3.4]:80", b"a" * 253,
])
def test_valid_host_accepts(host):
    assert valid_host(host) is True


@pytest.mark.parametrize("host", [
    b"", b" a", b"a ", b"a b", b"-a", b".a", b"a:", b"a:0", b"a:00000", b"a:65536", b"a:70000", b"a:123456",
    b"a:8o", b"a:80:80", b"[::1", b"::1]", b"::1", b"[]", b"[::1]:", b"[::1]:0", b"[::1]x", b"[g::1]",
    b"u@a", b"a/b", b"a?b", b"a#b", b"a\x00", b"a" * 254, b"a\r\nX: y",
])
def test_valid_host_rejects(host):
    assert valid_host(host) is False


@pytest.mark.parametrize("value,expected", [
    (b"API.Example.com:8080", "api.example.com"),
    (b"example.com", "example.com"),
    (b"Example.COM.", "example.com."),
    (b"[::1]:8080", "[::1]"),
    (b"[2001:DB8::1]", "[2001:db8::1]"),
    (b"1.2.3.4:80", "1.2.3.4"),
])
def test_host_without_port(value, expected):
    assert host_without_port(value) == expected


@pytest.mark.parametrize("value,expected", [
    (b"close", [b"close"]),
    (b"close, X-Foo", [b"close", b"x-foo"]),
    (b" Keep-Alive ,Upgrade ", [b"keep-alive", b"upgrade"]),
    (b", ,a,,", [b"a"]),
    (b"", []),
])
def test_connection_tokens(value, expected):
    assert connection_tokens(value) == expected


@pytest.mark.parametrize("value,ok", [
    (b"abc", True), (b"A-z_0.9:+/=", True), (b"x" * 128, True), (b"x" * 129, False), (b"", False),
    (b"a b", False), (b"a\n", False), (b"a;b", False), (b"a,b", False), (b"\xff", False), (b"a\"b", False),
])
def test_valid_request_id(value, ok):
    assert valid_request_id(value) is ok


def test_hop_by_hop_set():
    assert HOP_BY_HOP == {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
                          b"transfer-encoding", b"upgrade", b"proxy-authenticate", b"proxy-authorization"}


def test_request_id_factory_unique_and_format():
    factory = RequestIdFactory()
    ids = [factory() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    for rid in ids[:3] + ids[-3:]:
        assert re.fullmatch(rb"[0-9a-f]{32}", rid), rid
        assert valid_request_id(rid)
    assert {rid[:16] for rid in ids} == {ids[0][:16]}  # one per-process prefix...
    assert ids[0][16:] == b"%016x" % 1 and ids[-1][16:] == b"%016x" % 10_000  # ...and a counter
    other = RequestIdFactory()
    assert other()[:16] != ids[0][:16]  # a second factory has its own random prefix


# -- writer ---------------------------------------------------------------------------------------
def test_status_lines():
    assert writer.STATUS_LINES[200] == b"HTTP/1.1 200 OK\r\n"
    assert writer.STATUS_LINES[404] == b"HTTP/1.1 404 Not Found\r\n"
    assert writer.STATUS_LINES[502] == b"HTTP/1.1 502 Bad Gateway\r\n"
    assert writer.STATUS_LINES[101] == b"HTTP/1.1 101 Switching Protocols\r\n"
    assert writer.STATUS_LINES[599] == b"HTTP/1.1 599 Unknown\r\n"
    assert sorted(writer.STATUS_LINES) == list(range(100, 600))
    assert all(line.startswith(b"HTTP/1.1 %d " % code) and line.endswith(b"\r\n")
               for code, line in writer.STATUS_LINES.items())
    assert writer.reason_phrase(431) == b"Request Header Fields Too Large"
    assert writer.reason_phrase(799) == b"Unknown"
    assert writer.CONTINUE_100 == b"HTTP/1.1 100 Continue\r\n\r\n"


def test_chunk_framing():
    assert writer.chunk(b"hello") == b"5\r\nhello\r\n"
    assert writer.chunk(b"x") == b"1\r\nx\r\n"
    assert writer.chunk(b"y" * 255) == b"ff\r\n" + b"y" * 255 + b"\r\n"
    assert writer.chunk(b"z" * 4096) == b"1000\r\n" + b"z" * 4096 + b"\r\n"
    assert writer.LAST_CHUNK == b"0\r\n\r\n"


DATE_RE = rb"Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT\r\n"


def split_response(data: bytes) -> tuple[bytes, list[bytes], bytes]:
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep
    status, *lines = head.split(b"\r\n")
    return status, lines, body


def test_date_header_format():
    line = writer.date_header()
    assert re.fullmatch(DATE_RE, line), line
    assert writer.date_header() in (line, writer.date_header())  # cached within the second


def test_local_response_200_keep_alive():
    data = writer.local_response(200, [(b"Content-Type", b"text/plain"), (b"X-A", b"1")], b"hello",
                                 keep_alive=True, request_id=b"rid-1")
    status, lines, body = split_response(data)
    assert status == b"HTTP/1.1 200 OK"
    assert re.fullmatch(DATE_RE, lines[0] + b"\r\n")
    assert lines[1:] == [b"Content-Type: text/plain", b"X-A: 1", b"X-Request-ID: rid-1", b"Content-Length: 5"]
    assert body == b"hello"


def test_local_response_close_and_custom_request_id_header():
    data = writer.local_response(200, (), b"", keep_alive=False, request_id=b"r", request_id_header=b"X-Trace")
    status, lines, body = split_response(data)
    assert lines[1:] == [b"X-Trace: r", b"Content-Length: 0", b"Connection: close"]
    assert body == b""
    data = writer.local_response(200, (), b"", keep_alive=True, request_id=b"r", request_id_header=b"")
    assert b"r\r\n" not in data and b"Connection" not in data


@pytest.mark.parametrize("status", [204, 304])
def test_local_response_without_body(status):
    data = writer.local_response(status, [(b"ETag", b'"x"')], b"ignored", keep_alive=True)
    status_line, lines, body = split_response(data)
    assert status_line == writer.STATUS_LINES[status].rstrip(b"\r\n")
    assert lines[1:] == [b'ETag: "x"']  # no Content-Length, no body
    assert body == b""
    assert data.endswith(b"\r\n\r\n")


def test_local_response_head_keeps_length_drops_body():
    data = writer.local_response(200, [], b"hello", keep_alive=True, head_only=True)
    status_line, lines, body = split_response(data)
    assert lines[1:] == [b"Content-Length: 5"]
    assert body == b""


def test_local_response_unknown_status():
    data = writer.local_response(799, [], b"x", keep_alive=True)
    assert data.startswith(b"HTTP/1.1 799 Unknown\r\n")


@pytest.mark.parametrize("error,status", [
    (bad_request("invalid Host header"), 400),
    (ClientError(431, "headers_too_large", "too many header fields"), 431),
    (UpstreamError(502, "bad_gateway", "upstream closed"), 502),
])
def test_error_response_json_shape(error, status):
    data = writer.error_response(error, b"rid-9")
    status_line, lines, body = split_response(data)
    assert status_line + b"\r\n" == writer.STATUS_LINES[status]
    assert lines[1] == b"Content-Type: application/json"
    assert b"X-Request-ID: rid-9" in lines
    assert b"Content-Length: %d" % len(body) in lines
    assert lines[-1] == b"Connection: close"
    assert orjson.loads(body) == {"error": error.message, "status": status, "request_id": "rid-9"}


def test_error_response_without_request_id_and_head():
    data = writer.error_response(bad_request("nope"), None, keep_alive=True, head_only=True)
    status_line, lines, body = split_response(data)
    assert status_line == b"HTTP/1.1 400 Bad Request"
    assert not any(line.startswith(b"X-Request-ID") for line in lines)
    assert b"Connection: close" not in lines
    expected = writer.error_body(400, "nope", None)
    assert orjson.loads(expected) == {"error": "nope", "status": 400, "request_id": None}
    assert b"Content-Length: %d" % len(expected) in lines
    assert body == b""


# -- PathRewrite ----------------------------------------------------------------------------------
def strip_prefix(pattern: str) -> PathRewrite:
    """As the snapshot compiles ``strip_prefix: true`` for a prefix pattern."""
    return PathRewrite("", pattern_segments(pattern), False)


@pytest.mark.parametrize("path,expected", [
    (b"/api/users/7/x", b"/7/x"),
    (b"/api/users", b"/"),
    (b"/api/users/", b"/"),
    (b"/api/users/7", b"/7"),
    (b"/api/users/7/", b"/7/"),
])
def test_strip_prefix(path, expected):
    assert strip_prefix("/api/users").apply(path, None) == expected


def test_pattern_segments():
    assert pattern_segments("/api/users") == 2
    assert pattern_segments("/api/users/") == 2
    assert pattern_segments("=/health") == 1
    assert pattern_segments("/") == 0


def test_strip_prefix_of_root_is_identity():
    assert strip_prefix("/").apply(b"/a/b", None) == b"/a/b"


def test_rewrite_prefix_with_params():
    rewrite = PathRewrite("/v2/{id}/items", pattern_segments("/api/{id}"), False)
    assert rewrite.apply(b"/api/7/rest/x", {"id": "7"}) == b"/v2/7/items/rest/x"
    assert rewrite.apply(b"/api/7", {"id": "7"}) == b"/v2/7/items"


def test_rewrite_prefix_template_with_trailing_slash():
    rewrite = PathRewrite("/v2/", pattern_segments("/api"), False)
    assert rewrite.apply(b"/api/x/y", None) == b"/v2/x/y"
    assert rewrite.apply(b"/api", None) == b"/v2/"


def test_rewrite_exact_with_params_replaces_whole_path():
    rewrite = PathRewrite("/users/{user}/orders/{order}", 0, True)
    assert rewrite.apply(b"/u/alice/o/42", {"user": "alice", "order": "42"}) == b"/users/alice/orders/42"


def test_rewrite_missing_param_and_relative_template():
    assert PathRewrite("/x/{missing}/y", 0, True).apply(b"/whatever", {}) == b"/x//y"
    assert PathRewrite("{a}", 0, True).apply(b"/p", {"a": "b"}) == b"/b"
    assert PathRewrite("plain", 1, False).apply(b"/a/rest", None) == b"/plain/rest"


def test_path_rewrite_filter_rewrites_the_context_path():
    context = RequestContext(b"GET", b"/api/users/7", b"?q=1", None, [], b"127.0.0.1", "users", b"id")
    assert strip_prefix("/api/users").on_request(context) is None
    assert context.path == b"/7" and context.query == b"?q=1"


# -- balancer -------------------------------------------------------------------------------------
def test_smooth_weighted_order_proportions():
    order = smooth_weighted_order([5, 1, 1])
    assert len(order) == 7
    assert Counter(order) == {0: 5, 1: 1, 2: 1}
    assert order == [0, 0, 1, 0, 2, 0, 0]  # nginx's smooth sequence: the light targets are spread out


def test_smooth_weighted_order_reduces_by_gcd():
    assert smooth_weighted_order([10, 2, 2]) == smooth_weighted_order([5, 1, 1])
    assert Counter(smooth_weighted_order([300, 100])) == {0: 3, 1: 1}


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_smooth_weighted_order_equal_weights_never_repeat(count):
    order = smooth_weighted_order([4] * count)
    assert sorted(order) == list(range(count))
    cycled = order * 3
    if count > 1:
        assert all(a != b for a, b in zip(cycled, cycled[1:]))  # also across the cycle boundary


def test_smooth_weighted_order_is_smooth():
    order = smooth_weighted_order([3, 2])
    assert order == [0, 1, 0, 1, 0]
    order = smooth_weighted_order([2, 3, 5])
    assert Counter(order) == {0: 2, 1: 3, 2: 5}
    assert all(a != b or a == 2 for a, b in zip(order, order[1:]))


def test_smooth_weighted_order_limit():
    order = smooth_weighted_order([3, 2], limit=3)
    assert order == [0, 1, 0]


def _targets(*weights: int) -> list[Target]:
    return [Target(f"10.0.0.{i}", 80, w, pool=None, host_header=b"h") for i, w in enumerate(weights)]  # type: ignore[arg-type]


def test_round_robin_cycles():
    targets = _targets(1, 1, 1)
    balancer = RoundRobin(targets)
    picks = [balancer.pick() for _ in range(7)]
    assert [targets.index(t) for t in picks] == [0, 1, 2, 0, 1, 2, 0]


def test_round_robin_weighted_cycles():
    targets = _targets(5, 1, 1)
    balancer = RoundRobin(targets)
    picks = [targets.index(balancer.pick()) for _ in range(21)]
    assert picks == [0, 0, 1, 0, 2, 0, 0] * 3


def test_round_robin_single_target():
    targets = _targets(3)
    balancer = RoundRobin(targets)
    assert all(balancer.pick() is targets[0] for _ in range(5))


# -- Deadline -------------------------------------------------------------------------------------
# On a virtual clock: what is checked is which deadline fires when, never how promptly a busy
# machine schedules a real timer.


class VirtualLoop:
    """The part of an event loop Deadline uses (time, call_at), on a clock the test advances."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.timers: list[VirtualTimer] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback) -> "VirtualTimer":  # type: ignore[no-untyped-def]
        timer = VirtualTimer(when, callback)
        self.timers.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        """Move the clock, running every due timer in time order at its own time."""
        until = self.now + seconds
        while True:
            due = [t for t in self.timers if not t.cancelled and t.when <= until]
            if not due:
                break
            timer = min(due, key=lambda t: t.when)
            self.timers.remove(timer)
            self.now = max(self.now, timer.when)
            timer.callback()
        self.now = until

    def pending(self) -> list["VirtualTimer"]:
        return [t for t in self.timers if not t.cancelled]


class VirtualTimer:
    def __init__(self, when: float, callback) -> None:  # type: ignore[no-untyped-def]
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Fired:
    def __init__(self, loop: VirtualLoop) -> None:
        self.loop = loop
        self.times: list[float] = []

    def __call__(self) -> None:
        self.times.append(self.loop.time())


def _deadline() -> tuple[VirtualLoop, Fired, Deadline, float]:
    loop = VirtualLoop()
    fired = Fired(loop)
    return loop, fired, Deadline(TimerWheel(loop), fired), loop.time()  # type: ignore[arg-type]


def _at(time: float) -> object:
    """A firing time for a deadline due at ``time``: never before it, at most one slot after."""
    return pytest.approx(time + RESOLUTION / 2, abs=RESOLUTION / 2 + 1e-9)


def test_deadline_fires_once_after_delay():
    loop, fired, deadline, start = _deadline()
    deadline.set(0.05)
    loop.advance(0.049)
    assert fired.times == []
    loop.advance(1.0)
    assert fired.times == [_at(start + 0.05)]


def test_deadline_set_later_postpones():
    loop, fired, deadline, start = _deadline()
    deadline.set(0.05)
    loop.advance(0.03)
    deadline.set(0.1)  # now due at 0.13
    loop.advance(0.06)  # 0.09: past the first time, before the second
    assert fired.times == []
    loop.advance(1.0)
    assert fired.times == [_at(start + 0.13)]
    assert loop.pending() == []  # the wheel's timer went off twice (the early slot, then the late), then stopped


def test_deadline_clear_prevents_firing_and_can_rearm():
    loop, fired, deadline, _ = _deadline()
    deadline.set(0.03)
    deadline.clear()
    loop.advance(1.0)
    assert fired.times == []
    start = loop.time()
    deadline.set(0.03)
    loop.advance(1.0)
    assert fired.times == [_at(start + 0.03)]


def test_deadline_clear_then_set_later_before_old_timer():
    loop, fired, deadline, start = _deadline()
    deadline.set(0.03)
    deadline.clear()
    deadline.set(0.08)
    loop.advance(0.05)
    assert fired.times == []
    loop.advance(1.0)
    assert fired.times == [_at(start + 0.08)]


def test_deadline_set_earlier_moves_to_an_earlier_slot():
    loop, fired, deadline, start = _deadline()
    deadline.set(2.0)
    deadline.set(0.03)
    loop.advance(0.5)
    assert fired.times == [_at(start + 0.03)]
    loop.advance(2.0)  # the 2 s slot still held the deadline: it is stale there and fires nothing
    assert fired.times == [_at(start + 0.03)] and loop.pending() == []


def test_deadline_cancel_lets_go_of_the_owner():
    loop = VirtualLoop()
    fired = Fired(loop)
    wheel = TimerWheel(loop)  # type: ignore[arg-type]
    deadline = Deadline(wheel, fired)
    deadline.set(0.03)
    deadline.set(0.01)  # moved earlier: waits in two slots now (the first one stale)
    deadline.cancel()
    assert deadline._callback is None  # nothing reachable from the wheel holds the owner ...
    assert len(wheel) == 1  # ... and only a stale entry holds the deadline, until its slot comes
    loop.advance(1.0)
    assert fired.times == [] and loop.pending() == [] and len(wheel) == 0


def test_deadline_repeated_refresh_fires_once():
    loop, fired, deadline, _ = _deadline()
    for _ in range(5):
        deadline.set(0.05)
        loop.advance(0.01)
    assert fired.times == []
    last_set = loop.time() - 0.01
    loop.advance(1.0)
    assert fired.times == [_at(last_set + 0.05)]


def test_one_wheel_timer_for_many_deadlines():
    """10,000 idle connections' deadlines: one loop timer armed, each fires once in time order."""
    loop = VirtualLoop()
    wheel = TimerWheel(loop)  # type: ignore[arg-type]
    start = loop.time()
    fired: list[tuple[int, float]] = []
    deadlines = []
    for index in range(10_000):
        deadline = Deadline(wheel, lambda index=index: fired.append((index, loop.time())))
        deadline.set(1.0 + (index % 500) * 0.002)
        deadlines.append(deadline)
    assert len(loop.pending()) == 1 and len(wheel) == 10_000
    for deadline in deadlines[::2]:
        deadline.set(5.0)  # refreshed: later, so nothing moves now
    assert len(wheel) == 10_000
    loop.advance(3.0)
    assert sorted(index for index, _ in fired) == list(range(1, 10_000, 2))
    assert all(start + 1.0 + (index % 500) * 0.002 <= at <= start + 1.0 + (index % 500) * 0.002 + RESOLUTION + 1e-9
               for index, at in fired)
    loop.advance(10.0)
    assert len(fired) == 10_000 and loop.pending() == [] and len(wheel) == 0


def test_deadline_on_a_real_loop():
    """One run on a real event loop: the wheel works with asyncio's own timers (bounded waits only)."""
    async def main() -> None:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        deadline = Deadline(TimerWheel(loop), lambda: done.set_result(loop.time()))
        start = loop.time()
        deadline.set(0.02)
        deadline.set(0.05)
        assert await asyncio.wait_for(done, timeout=10) - start >= 0.05
    asyncio.run(main())


# -- join and status_line (compiled: C copies and typed lookups; pure: bytes.join) ------------------
@pytest.mark.parametrize("parts", [[], [b""], [b"a"], [b"GET ", b"/", b"", b" HTTP/1.1\r\n", b"x" * 70000]])
def test_join_is_bytes_join(parts):
    assert writer.join(list(parts)) == b"".join(parts)
    assert type(writer.join(list(parts))) is bytes


@pytest.mark.parametrize("parts", [[b"a", None], [b"a", "b"], [None]])
def test_join_refuses_what_is_not_bytes(parts):
    with pytest.raises(TypeError):
        writer.join(parts)


@pytest.mark.parametrize("status, reason, line", [
    (200, b"OK", b"HTTP/1.1 200 OK\r\n"),
    (200, b"", b"HTTP/1.1 200 OK\r\n"),
    (200, b"Fine", b"HTTP/1.1 200 Fine\r\n"),
    (404, b"Not Found", b"HTTP/1.1 404 Not Found\r\n"),
    (299, b"", b"HTTP/1.1 299 Unknown\r\n"),
    (299, b"Custom \x80", b"HTTP/1.1 299 Custom \x80\r\n"),
    (200, b"O\x00K", b"HTTP/1.1 200 OK\r\n"),  # control characters: the standard phrase instead
    (599, b"\x7f", b"HTTP/1.1 599 Unknown\r\n"),
])
def test_status_line_keeps_a_safe_phrase_only(status, reason, line):
    assert writer.status_line(status, reason) == line


def _paths_over(alphabet: bytes, length: int):  # every path of up to ``length`` bytes after "/"
    paths = [b"/"]
    for _ in range(length):
        paths += [path + bytes([byte]) for path in paths if len(path) == len(paths[-1]) for byte in alphabet]
    return paths


def test_routing_paths_scan_finds_every_spelling_that_needs_work():
    """The one scan that lets a clean path through untouched (compiled: a C loop) is exactly the
    regular expression it stands for: checked over every short path of the bytes that matter."""
    checked = 0
    for path in _paths_over(b"/.%;\\a", 4):
        try:
            expected = normalize_path(path)
            lenient = lenient_reading(expected)
        except ClientError:
            with pytest.raises(ClientError):
                routing_paths(path)
            continue
        assert routing_paths(path) == (expected, lenient), path
        checked += 1
    assert checked > 500


@pytest.mark.parametrize("target, query", [(b"/a?b", b"?b"), (b"/a", b""), (b"/?", b"?"), (b"/a?b?c", b"?b?c"),
                                           (b"http://h/x?y", b"?y")])
def test_split_target_cuts_the_query_at_the_first_question_mark(target, query):
    assert split_target(target)[1] == query


def test_field_kinds_never_skip_a_name_of_the_table():
    """may_hold (length and first letter) only ever rules out names that are not in the table."""
    import random
    import string

    from litemesh.http.headers import FieldKinds

    table = {b"host": 1, b"content-length": 2, b"x-request-id": 3, b"te": 4, b"": 5}
    kinds = FieldKinds(table)
    for name in table:
        if name:
            for spelling in (name, name.upper(), name.title()):
                assert kinds.may_hold(spelling)
    rng = random.Random(7)
    alphabet = (string.ascii_letters + string.digits + "-_!#$%&'*+.^`|~").encode()
    for _ in range(20_000):
        name = bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 20)))
        if not kinds.may_hold(name):
            assert name.lower() not in table
    assert not kinds.may_hold(b"") and not kinds.may_hold(b"x" * 64)
