"""Small helpers shared by the functional tests (streaming body reads, error-answer checks)."""
from __future__ import annotations

import hashlib
import socket
import threading
import time
from typing import Callable, Iterable

from tests.support.rawclient import IncompleteResponse, ProtocolError, RawConnection, Response, request

HOST = "127.0.0.1"


def connect(port: int, timeout: float = 5.0) -> RawConnection:
    return RawConnection(HOST, port, timeout=timeout)


def get(port: int, path: str, method: str = "GET", **kwargs) -> Response:  # type: ignore[no-untyped-def]
    return request(port, method, path, **kwargs)


def _recv_into(conn: RawConnection, deadline: float) -> bytes:
    """Next bytes of the stream (buffered first), b"" on EOF; never accumulates."""
    if conn.buf:
        data, conn.buf = conn.buf, b""
        return data
    if conn.eof:
        return b""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("timed out reading the body")
    conn.sock.settimeout(remaining)
    try:
        data = conn.sock.recv(1 << 20)
    except socket.timeout as exc:
        raise TimeoutError("timed out reading the body") from exc
    except ConnectionResetError:
        conn.eof = conn.reset = True
        return b""
    if not data:
        conn.eof = True
    return data


def _read_line(conn: RawConnection, deadline: float) -> bytes:
    while b"\r\n" not in conn.buf:
        if len(conn.buf) > 4096:
            raise ProtocolError("chunk line too long")
        pending, conn.buf = conn.buf, b""  # so _recv_into reads the socket, not the partial line again
        data = _recv_into(conn, deadline)
        if not data:
            raise IncompleteResponse("closed inside a chunk line")
        conn.buf = pending + data
    line, _, conn.buf = conn.buf.partition(b"\r\n")
    return line


def stream_body(conn: RawConnection, resp: Response, timeout: float = 30.0,
                method: str = "GET") -> tuple[int, str]:
    """Read the body of ``resp`` (received with ``head_only=True``) without keeping it in memory.

    Returns ``(length, sha256 hex)``.  Raises IncompleteResponse when the body is cut short.
    """
    deadline = time.monotonic() + timeout
    sha = hashlib.sha256()
    total = 0
    te = [t.strip().lower() for v in resp.header_all("transfer-encoding") for t in v.split(",") if t.strip()]
    if method == "HEAD" or resp.status in (204, 304) or resp.status < 200:
        return 0, sha.hexdigest()
    if te and te[-1] == "chunked":
        resp.chunked = True
        while True:
            size = int(_read_line(conn, deadline).split(b";", 1)[0].strip(), 16)
            if size == 0:
                while _read_line(conn, deadline):  # trailers up to the blank line
                    pass
                break
            left = size + 2
            while left:
                data = _recv_into(conn, deadline)
                if not data:
                    raise IncompleteResponse(f"closed inside a chunk after {total} bytes")
                if len(data) > left:
                    conn.buf = data[left:]
                    data = data[:left]
                left -= len(data)
                payload = data if left >= 2 else data[:len(data) - (2 - left)]
                sha.update(payload)
                total += len(payload)
        return total, sha.hexdigest()
    if resp.header_all("content-length"):
        left = int(resp.header("content-length"))
        while left:
            data = _recv_into(conn, deadline)
            if not data:
                raise IncompleteResponse(f"closed after {total} of {total + left} body bytes")
            if len(data) > left:
                conn.buf = data[left:]
                data = data[:left]
            sha.update(data)
            total += len(data)
            left -= len(data)
        return total, sha.hexdigest()
    while True:  # delimited by the close
        data = _recv_into(conn, deadline)
        if not data:
            return total, sha.hexdigest()
        sha.update(data)
        total += len(data)


def wait_until(predicate: Callable[[], object], timeout: float = 15.0, what: str = "", step: float = 0.05):  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it returns something truthy, and return that; AssertionError after
    ``timeout`` seconds.  The way functional tests wait: on a signal, never on a bare sleep."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what or 'condition'} not met within {timeout} s")
        time.sleep(step)


def metric_sum(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` in a Prometheus page whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def assert_error_answer(resp: Response, status: int) -> dict:
    """The gateway's JSON error shape: ``{"error", "status", "request_id"}`` matching the header."""
    assert resp.status == status, (resp.status, resp.body[:300])
    assert resp.header("content-type") == "application/json", resp.headers
    data = resp.json()
    assert set(data) == {"error", "status", "request_id"}, data
    assert data["status"] == status
    assert isinstance(data["error"], str) and data["error"]
    assert isinstance(data["request_id"], str) and data["request_id"]
    assert resp.header("x-request-id") == data["request_id"]
    return data


class RssSampler:
    """Samples a gateway's RSS in a thread; ``peak`` is the largest value seen."""

    def __init__(self, read_rss: Callable[[], int], interval: float = 0.02) -> None:
        self.read_rss = read_rss
        self.interval = interval
        self.baseline = read_rss()
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.read_rss())
            except (OSError, RuntimeError):
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


def send_all(sock: socket.socket, pieces: Iterable[bytes]) -> None:
    for piece in pieces:
        sock.sendall(piece)
