"""Synchronous raw HTTP/1.1 client for tests that need exact bytes on the wire.

The response parser is written by hand (not httptools) because it must stop at
exactly one response, keep the rest for the next (pipelining) and be told the
request method (a HEAD response has framing headers but no body).
"""
from __future__ import annotations

import json
import select
import socket
import time
from typing import Any, Iterable, Mapping, Sequence

__all__ = [
    "RawConnection",
    "Response",
    "HeaderList",
    "IncompleteResponse",
    "NoResponse",
    "ProtocolError",
    "request",
    "build_request",
    "chunked_body",
]

HeadersArg = Mapping[str, str] | Sequence[tuple[str, str]] | None
_MAX_HEAD = 256 * 1024


class ProtocolError(Exception):
    """The peer sent something that is not a valid HTTP/1.1 response."""


class IncompleteResponse(Exception):
    """The peer closed before the response was complete; ``data`` holds what came."""

    def __init__(self, message: str, data: bytes = b"") -> None:
        super().__init__(message)
        self.data = data


class NoResponse(IncompleteResponse):
    """The peer closed without sending a single byte of a response."""


class HeaderList(list):
    """List of (name, value) that also answers case-insensitive name lookups.

    ``hl["content-length"]`` -> first value (KeyError if absent),
    ``"connection" in hl`` -> presence, ``hl.get(name)`` / ``hl.get_all(name)``.
    Tuples still behave as list items: ``("A", "b") in hl``.
    """

    def get(self, name: str, default: str | None = None) -> str | None:
        lname = name.lower()
        for k, v in self:
            if k.lower() == lname:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        lname = name.lower()
        return [v for k, v in self if k.lower() == lname]

    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, str):
            value = self.get(key)
            if value is None:
                raise KeyError(key)
            return value
        return super().__getitem__(key)

    def __contains__(self, item: object) -> bool:
        if isinstance(item, str):
            return self.get(item) is not None
        return super().__contains__(item)


class Response:
    """One parsed HTTP response."""

    def __init__(self, status: int, reason: str, http_version: str,
                 headers: HeaderList, raw_head: bytes) -> None:
        self.status = status
        self.reason = reason
        self.http_version = http_version  # e.g. "HTTP/1.1"
        self.headers = headers
        self.raw_head = raw_head  # status line + headers + blank line, verbatim
        self.body = b""
        self.chunked = False
        self.trailers = HeaderList()
        self.body_complete = False  # False after recv_response(head_only=True)

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    def header_all(self, name: str) -> list[str]:
        return self.headers.get_all(name)

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason!r} body={len(self.body)}B>"


def _connection_tokens(resp: Response) -> set[str]:
    return {t.strip().lower() for v in resp.header_all("connection") for t in v.split(",")}


class RawConnection:
    """A blocking TCP connection that speaks HTTP/1.1 byte by byte."""

    def __init__(self, host: str = "127.0.0.1", port: int = 80, timeout: float = 5) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""  # received but not yet consumed (next pipelined response)
        self.eof = False  # peer closed (FIN or RST)
        self.reset = False  # peer closed with RST

    # -- lifecycle ------------------------------------------------------------

    def __enter__(self) -> "RawConnection":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    # -- sending -------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, method: str, path: str, headers: HeadersArg = None,
                body: bytes | Iterable[bytes] | None = None, host: str = "localhost",
                **recv_kwargs: Any) -> Response:
        """Send one request and read its response on this connection."""
        self.send(build_request(method, path, headers, body, host))
        return self.recv_response(method=method, **recv_kwargs)

    # -- receiving -----------------------------------------------------------

    def _fill(self, deadline: float) -> bool:
        """Receive more bytes into the buffer; False on EOF/RST."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out waiting for response bytes")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(256 * 1024)
        except socket.timeout as exc:
            raise TimeoutError("timed out waiting for response bytes") from exc
        except ConnectionResetError:
            self.eof = self.reset = True
            return False
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _take_until(self, marker: bytes, deadline: float, consumed: bytes) -> bytes:
        start = 0
        while True:
            idx = self.buf.find(marker, start)
            if idx >= 0:
                out, self.buf = self.buf[:idx + len(marker)], self.buf[idx + len(marker):]
                return out
            if len(self.buf) > _MAX_HEAD:
                raise ProtocolError("line/head too long")
            start = max(0, len(self.buf) - len(marker) + 1)
            if not self._fill(deadline):
                raise IncompleteResponse("peer closed mid-response", consumed + self.buf)

    def _take_exact(self, n: int, deadline: float, consumed: bytes) -> bytes:
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise IncompleteResponse(
                    f"peer closed after {len(self.buf)} of {n} bytes", consumed + self.buf)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_response(self, method: str = "GET", head_only: bool = False,
                      timeout: float | None = None) -> Response:
        """Parse exactly one response from the stream.

        1xx interim responses (100 Continue, 103) are returned on their own;
        call again for the final response. With ``head_only`` the body stays
        in the stream; read it with ``recv_body(resp, method)``.
        """
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        if not self.buf and not self._fill(deadline):
            raise NoResponse("peer closed without responding")
        try:
            raw_head = self._take_until(b"\r\n\r\n", deadline, b"")
        except IncompleteResponse as exc:
            if not exc.data:
                raise NoResponse("peer closed without responding") from None
            raise
        resp = _parse_head(raw_head)
        if not head_only:
            self._recv_body(resp, method, deadline)
        return resp

    def recv_body(self, resp: Response, method: str = "GET",
                  timeout: float | None = None) -> Response:
        """Read the body of ``resp`` (from ``head_only``) according to its framing."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        return self._recv_body(resp, method, deadline)

    def _recv_body(self, resp: Response, method: str, deadline: float) -> Response:
        status = resp.status
        te = [t.strip().lower() for v in resp.header_all("transfer-encoding")
              for t in v.split(",") if t.strip()]
        if method.upper() == "HEAD" or status in (204, 304) or 100 <= status < 200:
            pass
        elif te and te[-1] == "chunked":
            resp.chunked = True
            resp.body = self._read_chunked(resp, deadline)
        elif te:
            resp.body = self._read_to_close(deadline, resp.raw_head)
        elif resp.header_all("content-length"):
            resp.body = self._take_exact(_content_length(resp), deadline, resp.raw_head)
        else:
            resp.body = self._read_to_close(deadline, resp.raw_head)
        resp.body_complete = True
        return resp

    def _read_chunked(self, resp: Response, deadline: float) -> bytes:
        parts: list[bytes] = []
        got = resp.raw_head
        while True:
            line = self._take_until(b"\r\n", deadline, got)
            size_text = line[:-2].split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size line {line!r}") from None
            if size == 0:
                break
            parts.append(self._take_exact(size, deadline, got + b"".join(parts)))
            if self._take_exact(2, deadline, got) != b"\r\n":
                raise ProtocolError("chunk data not followed by CRLF")
        while True:  # trailer section, ends with an empty line
            line = self._take_until(b"\r\n", deadline, got)
            if line == b"\r\n":
                break
            name, _, value = line[:-2].decode("latin-1").partition(":")
            resp.trailers.append((name.strip(), value.strip()))
        return b"".join(parts)

    def _read_to_close(self, deadline: float, got: bytes) -> bytes:
        while self._fill(deadline):
            pass
        body, self.buf = self.buf, b""
        return body

    def is_closed(self, timeout: float = 1.0) -> bool:
        """True once the peer has closed (FIN or RST), waiting at most ``timeout``.

        Data that arrives meanwhile is kept in the buffer and waiting goes on:
        a peer that sends then closes still counts as closed.
        """
        deadline = time.monotonic() + timeout
        while not self.eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            readable, _, _ = select.select([self.sock], [], [], remaining)
            if not readable:
                return False
            try:
                self._fill(deadline + 0.1)
            except (TimeoutError, OSError):
                return self.eof
        return True

    def keeps_alive(self, resp: Response) -> bool:
        """Whether the response framing lets this connection be reused."""
        return "close" not in _connection_tokens(resp) and resp.http_version == "HTTP/1.1"


def _parse_head(raw_head: bytes) -> Response:
    lines = raw_head[:-4].split(b"\r\n")
    status_line = lines[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ProtocolError(f"bad status line {status_line!r}")
    headers = HeaderList()
    for line in lines[1:]:
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep or not name or name != name.strip():
            raise ProtocolError(f"bad header line {line!r}")
        headers.append((name, value.strip(" \t")))
    reason = parts[2] if len(parts) > 2 else ""
    return Response(int(parts[1]), reason, parts[0], headers, raw_head)


def _content_length(resp: Response) -> int:
    values = {v.strip() for raw in resp.header_all("content-length") for v in raw.split(",")}
    if len(values) != 1 or not next(iter(values)).isdigit():
        raise ProtocolError(f"bad Content-Length {resp.header_all('content-length')!r}")
    return int(values.pop())


# --------------------------------------------------------------------------- #
# Request building
# --------------------------------------------------------------------------- #


def chunked_body(chunks: Iterable[bytes], trailers: HeadersArg = None) -> bytes:
    """Encode ``chunks`` with chunked transfer-coding (empty chunks skipped)."""
    out = [b"%x\r\n%s\r\n" % (len(c), c) for c in chunks if c]
    out.append(b"0\r\n")
    for name, value in _header_items(trailers):
        out.append(f"{name}: {value}\r\n".encode("latin-1"))
    out.append(b"\r\n")
    return b"".join(out)


def _header_items(headers: HeadersArg) -> list[tuple[str, str]]:
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return list(headers.items())
    return list(headers)


def build_request(method: str, path: str, headers: HeadersArg = None,
                  body: bytes | Iterable[bytes] | None = None,
                  host: str | None = "localhost", version: str = "HTTP/1.1") -> bytes:
    """Serialize a request. Host is added unless given in ``headers`` or None.

    ``bytes`` bodies get Content-Length and an iterable of bytes is sent
    chunked, unless the caller already supplied a framing header.
    """
    items = _header_items(headers)
    names = {k.lower() for k, _ in items}
    if host is not None and "host" not in names:
        items.insert(0, ("Host", host))
    framed = "content-length" in names or "transfer-encoding" in names
    payload = b""
    if isinstance(body, (bytes, bytearray, memoryview)):
        payload = bytes(body)
        if not framed and (payload or method.upper() in ("POST", "PUT", "PATCH")):
            items.append(("Content-Length", str(len(payload))))
    elif body is not None:
        if not framed:
            items.append(("Transfer-Encoding", "chunked"))
            payload = chunked_body(body)
        else:
            payload = b"".join(body)
    head = f"{method} {path} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in items)
    return head.encode("latin-1") + b"\r\n" + payload


def request(port: int, method: str, path: str, headers: HeadersArg = None,
            body: bytes | Iterable[bytes] | None = None, host: str = "localhost",
            timeout: float = 5, address: str = "127.0.0.1") -> Response:
    """One-shot request on a fresh connection (``Connection: close`` unless given)."""
    items = _header_items(headers)
    if not any(k.lower() == "connection" for k, _ in items):
        items.append(("Connection", "close"))
    with RawConnection(address, port, timeout=timeout) as conn:
        return conn.request(method, path, items, body, host)
