"""Fuzz target: the upstream side of the request path (UpstreamConnection, Exchange's response
handling), driven without sockets by tests/support/sansio.py.

Input: byte 0 picks the request (GET, HEAD, a WebSocket upgrade, a POST with a body) and whether
the upstream closes after sending; byte 1 seeds the random split; the rest is what the upstream
sends.  Invariants, each a finding when broken:

* nothing raises out of the protocol callbacks;
* the same outcome (what the client receives, whether it was closed, whether the exchange became a
  tunnel, whether the upstream connection went back to the pool) whether the upstream's bytes come
  in one read, byte by byte or at random splits;
* the client receives a well-formed response stream: a valid status line whose status is 100-599
  and whose reason phrase holds no control characters, headers as llhttp reads them, and (unless
  the connection became a tunnel) a body framed as its head says;
* a tunnel only after the client asked to switch, with a 101 naming the protocol it asked for.
"""
from __future__ import annotations

import contextlib
import random
import re
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    import atheris

    instrumented = atheris.instrument_imports()
else:
    instrumented = contextlib.nullcontext()

with instrumented:
    import httptools

    from tests.support.sansio import ProxyHarness

REQUESTS = (
    b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n",
    b"HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody",
)
_STATUS_LINE = re.compile(rb"HTTP/1\.1 ([1-5][0-9][0-9]) [\t\x20-\x7e\x80-\xff]*")
_MAX = 4096  # longer inputs are cut: splitting them byte by byte would be slow


def outcome(request: bytes, response: bytes, pieces: list[int] | None, closes: bool) -> tuple:
    """The harness's outcome, with the client's bytes decoded: how a body was re-chunked depends on
    the upstream's reads (the proxy streams what each read brings), what it carries must not."""
    harness = ProxyHarness()
    harness.send(request)
    harness.respond(response, pieces)
    if closes:
        harness.upstream_closes()
    client, closed, tunnelled, pooled = harness.outcome()
    return (client if tunnelled else decode(client)), closed, tunnelled, pooled


class _Decoded:
    def __init__(self) -> None:
        self.messages: list[list] = []

    def on_message_begin(self) -> None:
        self.messages.append([0, [], b"", False])

    def on_header(self, name: bytes, value: bytes) -> None:
        self.messages[-1][1].append((name, value))

    def on_headers_complete(self) -> None:
        self.messages[-1][0] = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self.messages[-1][2] += body

    def on_message_complete(self) -> None:
        self.messages[-1][3] = True


def decode(data: bytes) -> tuple:
    """The responses in a client's byte stream, as (status, headers, body, complete), or the bytes
    themselves when llhttp cannot read them (check_client_stream reports that)."""
    decoded = _Decoded()
    parser = decoded.parser = httptools.HttpResponseParser(decoded)
    try:
        parser.feed_data(data)
    except httptools.HttpParserError:
        return ("unparsable", data)
    return tuple((m[0], tuple(m[1]), m[2], m[3]) for m in decoded.messages)


def splits(length: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    sizes = []
    while sum(sizes) < length:
        sizes.append(rng.randint(1, max(1, length // 3 + 1)))
    return sizes


class _Client:
    def __init__(self) -> None:
        self.heads: list[int] = []
        self.complete = 0

    def on_headers_complete(self) -> None:
        pass

    def on_message_complete(self) -> None:
        self.complete += 1


def check_client_stream(data: bytes, head_only: bool, tunnelled: bool, asked_switch: bool) -> None:
    if not data:
        return
    line_end = data.find(b"\r\n")
    assert line_end > 0, f"no status line: {data[:100]!r}"
    match = _STATUS_LINE.fullmatch(data, 0, line_end)
    assert match is not None, f"bad status line {data[:line_end]!r}"
    status = int(match.group(1))
    if tunnelled:
        assert asked_switch and status == 101, "a tunnel the client did not ask for"
        assert re.search(rb"\r\nUpgrade: websocket(?:\r\n|$)", data.split(b"\r\n\r\n", 1)[0], re.I), data[:300]
        return
    assert status != 101, "a 101 without a tunnel"
    if head_only:
        return  # llhttp cannot frame a response to HEAD without knowing the request
    client = _Client()
    parser = httptools.HttpResponseParser(client)
    try:
        parser.feed_data(data)
    except httptools.HttpParserUpgrade:
        raise AssertionError("the client would switch protocols") from None
    except httptools.HttpParserError as exc:
        raise AssertionError(f"the client cannot parse what it got ({exc}): {data[:300]!r}") from None


def check(data: bytes) -> None:
    if len(data) < 2:
        return
    choice, seed, response = data[0], data[1], data[2:_MAX]
    request = REQUESTS[choice % len(REQUESTS)]
    closes = bool(choice & 0x10)
    whole = outcome(request, response, None, closes)
    for pieces in ([1] * len(response), splits(len(response), seed)):
        assert outcome(request, response, pieces, closes) == whole, f"the split {pieces[:20]} changed the outcome"
    harness = ProxyHarness()
    harness.send(request)
    harness.respond(response)
    if closes:
        harness.upstream_closes()
    check_client_stream(harness.to_client, request.startswith(b"HEAD"), harness.tunnelled, b"Upgrade" in request)


def main() -> None:
    from tests.fuzz.targets import main as fuzz

    fuzz(check)


if __name__ == "__main__":
    main()
