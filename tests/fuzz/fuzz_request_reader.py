"""Fuzz target: the request reader (litemesh/http/request.py), fed whole, byte by byte and at random
splits.

Input: byte 0 seeds the random split, byte 1 picks the limits, the rest is the client's byte stream.
Invariants, each a finding when broken:

* only request events come out, or a GatewayError (anything else escaping ``feed`` is a crash);
* the same events, in the same order, with the same error, whatever the split (bodies compared as
  the concatenation of their pieces; after a protocol switch, the bytes handed over);
* a completed request's body has exactly its Content-Length;
* a message both the reader and plain llhttp complete has the same method, target and body (llhttp
  decoding chunked bodies is the reference decoder), and the same end-to-end fields as llhttp's
  field callbacks less the ones the gateway owns or Connection names (the reader reads field lines
  off the validated head's bytes itself), and a chunked body one of them accepts the other does
  not reject unless a limit explains it.
"""
from __future__ import annotations

import contextlib
import random
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

    from litemesh.errors import GatewayError
    from litemesh.http.headers import connection_tokens
    from litemesh.http.request import GATEWAY_OWNED_FIELDS, ReaderLimits, RequestHandler, RequestHead, RequestReader

LIMITS = (
    ReaderLimits(),
    ReaderLimits(max_request_line=64, max_header_size=256, max_headers=8, max_body_size=64),
    ReaderLimits(max_request_line=256, max_header_size=1024, max_headers=20, max_body_size=4096),
    ReaderLimits(max_request_line=32, max_header_size=64, max_headers=2, max_body_size=0),
)
_LIMIT_STATUSES = {413, 414, 431}


class _Events(RequestHandler):
    """A RequestHandler recording normalized events."""

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.switched = False

    def on_request_head(self, head: RequestHead) -> None:
        self.events.append(("head", *(getattr(head, name) if name != "headers" else tuple(head.headers)
                                      for name in RequestHead.__slots__)))

    def on_request_body(self, data: bytes) -> None:
        assert isinstance(data, bytes) and data, "empty or non-bytes body piece"
        if self.events and self.events[-1][0] == "body":
            self.events[-1] = ("body", self.events[-1][1] + data)
        else:
            self.events.append(("body", data))

    def on_request_end(self) -> None:
        self.events.append(("end",))

    def on_request_upgrade(self, rest: bytes) -> None:
        self.events.append(("switch", rest))
        self.switched = True


def run(stream: bytes, sizes: list[int], limits: ReaderLimits) -> list[tuple]:
    handler = _Events()
    reader = RequestReader(handler, limits)
    at = 0
    for size in sizes:
        piece = stream[at:at + size]
        at += size
        if not piece:
            continue
        if handler.switched:  # the protocol hands everything after a switch to the tunnel
            kind, rest = handler.events[-1]
            handler.events[-1] = (kind, rest + piece)
            continue
        try:
            reader.feed(piece)
        except GatewayError as error:
            handler.events.append(("error", error.status, error.kind, error.message))
            break
    return handler.events


def splits(length: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    sizes = []
    while sum(sizes) < length:
        sizes.append(rng.randint(1, max(1, length // 3 + 1)))
    return sizes


class _Reference:
    """Plain llhttp over the whole stream: per completed message, (method, target, body)."""

    def __init__(self) -> None:
        self.messages: list[tuple[bytes, bytes]] = []
        self.fields: list[list[tuple[bytes, bytes]]] = []  # per completed message
        self._target = b""
        self._body = b""
        self._fields: list[tuple[bytes, bytes]] = []
        self._in_body = False

    def on_message_begin(self) -> None:
        self._target, self._body, self._fields, self._in_body = b"", b"", [], False

    def on_url(self, url: bytes) -> None:
        self._target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._in_body:  # (a chunked body's trailer fields come through here too)
            self._fields.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_body = True

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        self.messages.append((self._target, self._body))
        self.fields.append(self._fields)


def reference(stream: bytes) -> tuple[list[tuple[bytes, bytes]], bool, list[list[tuple[bytes, bytes]]]]:
    """The messages llhttp completes, whether it stopped on an error, and each message's fields."""
    ref = _Reference()
    parser = httptools.HttpRequestParser(ref)
    try:
        parser.feed_data(stream)
    except httptools.HttpParserUpgrade:  # llhttp skips the body of such a request: not comparable
        return ref.messages[:-1], False, ref.fields
    except httptools.HttpParserError:
        return ref.messages, True, ref.fields
    return ref.messages, False, ref.fields


def end_to_end(fields: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """llhttp's fields of a message as the reader forwards them: without the gateway's own, and
    without those its Connection fields name (other than its options)."""
    named = {token for name, value in fields if name.lower() == b"connection" for token in connection_tokens(value)}
    named -= {b"close", b"keep-alive", b"upgrade"}
    return [(name, value) for name, value in fields
            if name.lower() not in GATEWAY_OWNED_FIELDS and name.lower() not in named]


def completed(events: list[tuple]) -> list[tuple[RequestHead, bytes]]:
    """(head fields, body) of every request the reader completed."""
    out, head, body = [], None, b""
    for event in events:
        if event[0] == "head":
            head, body = event, b""
        elif event[0] == "body":
            body += event[1]
        elif event[0] == "end":
            out.append((head, body))
    return out


_FIELD = {name: index + 1 for index, name in enumerate(RequestHead.__slots__)}


def check(data: bytes) -> None:
    if len(data) < 2:
        return
    seed, limits, stream = data[0], LIMITS[data[1] % len(LIMITS)], data[2:]
    whole = run(stream, [len(stream)], limits)
    for sizes in ([1] * len(stream), splits(len(stream), seed)):
        split = run(stream, sizes, limits)
        assert split == whole, f"split {sizes[:20]} changed the events:\n{whole}\n{split}"
    done = completed(whole)
    for head, body in done:
        length = head[_FIELD["content_length"]]
        if not head[_FIELD["chunked"]] and length >= 0:
            assert len(body) == length, (length, len(body))
    # plain llhttp as the reference, for the messages both complete
    expected, failed, ref_fields = reference(stream)
    for (head, body), (target, ref_body), fields in zip(done, expected, ref_fields):
        assert head[_FIELD["target"]] == target, (head, target)
        assert body == ref_body, f"body differs from llhttp's: {body!r} vs {ref_body!r}"
        assert list(head[_FIELD["headers"]]) == end_to_end(fields), (head, fields)
    errors = [e for e in whole if e[0] == "error"]
    k = len(done)  # the first message the reader did not complete
    if errors and k < len(expected) and errors[0][3] in _FRAMING_ERRORS:
        raise AssertionError(f"the reader refused chunked framing that llhttp accepts: {whole}")
    if failed and k > len(expected):
        head = done[len(expected)][0]
        if _llhttp_knows(head[_FIELD["method"]]):
            raise AssertionError(f"the reader completed a message llhttp refuses: {done[len(expected)]}")


_FRAMING_ERRORS = {"invalid chunked framing", "invalid trailer field"}


def _llhttp_knows(method: bytes) -> bool:
    try:
        httptools.HttpRequestParser(_Reference()).feed_data(method + b" / HTTP/1.1\r\n")
    except httptools.HttpParserError:
        return False
    return True


def main() -> None:
    from tests.fuzz.targets import main as fuzz

    fuzz(check)


if __name__ == "__main__":
    main()
