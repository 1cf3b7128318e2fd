"""Sans-IO decoder of a chunked request body (RFC 9112 §7.1), strict, with every limit on bytes.

The request reader frames chunked bodies itself instead of leaving them to llhttp, because llhttp
hands over chunk data but not chunk sizes: a chunk that declares more than ``max_body_size`` must
be refused before any of it is forwarded, and the limits on size lines and trailers must hold
whatever the read boundaries are.  Here every rule is applied to the bytes as they arrive, and the
decoder's state carries across reads, so the outcome never depends on how the body was split.

Grammar accepted (strict: no whitespace, CRLF only, as llhttp in strict mode)::

    chunk      = 1*16HEXDIG *( 1*";" [ token ] [ "=" [ token ] [ quoted-string ] ] ) CRLF data CRLF
                 (a name or a "=" after each run of ";", as llhttp accepts)
    last-chunk = 1*"0" *( chunk-ext ) CRLF
    trailer    = *( field-name ":" OWS field-value OWS CRLF ) CRLF

Trailer fields are validated (framing fields are refused there, as llhttp refuses them) and
counted against the header limit, then dropped (the proxy re-chunks bodies and does not forward
trailers).
"""
from __future__ import annotations

import re
from typing import Callable

from ..errors import ClientError, bad_request

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_EXT_VALUE = rb"(?:" + _TOKEN + rb")?(?:\"(?:[^\"\\\x00-\x08\x0a-\x1f\x7f]|\\[\x09\x20-\x7e\x80-\xff])*\")?"
# as llhttp (the reference decoder of the fuzz target) reads them: a name, or an empty one before
# "=", and a value of token characters and/or a quoted string, possibly empty; no whitespace; empty
# extensions (";;") before one that is not
_SIZE_LINE = re.compile(
    rb"([0-9A-Fa-f]+)((?:;+(?:" + _TOKEN + rb"(?:=" + _EXT_VALUE + rb")?|=" + _EXT_VALUE + rb"))*)"
)
_TRAILER_FIELD = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t ]*[^\x00-\x08\x0a-\x1f\x7f]*")

_FRAMING_FIELDS = frozenset((b"transfer-encoding", b"content-length"))

_SIZE, _DATA, _DATA_END, _TRAILER, _DONE = 0, 1, 2, 3, 4
#: the longest chunk-size line (digits and extensions); longer ones are refused (431)
MAX_SIZE_LINE = 4096


def _framing_error() -> ClientError:
    return bad_request("invalid chunked framing")


def _too_large() -> ClientError:
    return ClientError(413, "payload_too_large", "request body too large")


class ChunkedDecoder:
    """Feed it the bytes after a head (``feed(data, pos)`` returns where the body ended, or
    ``len(data)``); it calls ``on_data(bytes)`` for every piece of chunk data, in order, and sets
    ``done`` after the last chunk and its trailer section."""

    __slots__ = ("_on_data", "_max_body", "_max_trailer", "_state", "_line", "_remaining", "_body",
                 "_trailer_bytes", "done")

    def __init__(self, on_data: Callable[[bytes], None], max_body: int = 0, max_trailer: int = 32768) -> None:
        self._on_data = on_data
        self._max_body = max_body  # 0: unlimited
        self._max_trailer = max_trailer
        self._state = _SIZE
        self._line = b""  # an unfinished line (size line or trailer field) carried across reads
        self._remaining = 0  # data bytes left in the current chunk
        self._body = 0  # data bytes so far (declared ones count once their size line is read)
        self._trailer_bytes = 0
        self.done = False

    def feed(self, data: bytes, pos: int = 0) -> int:
        """Decode ``data[pos:]``; returns the offset just after the body (or ``len(data)``).

        Raises:
            ClientError: 400 for broken framing, 413 when a chunk's declared size takes the body
                over the limit (before any of its data is delivered), 431 for an over-long size
                line or trailer section.
        """
        end = len(data)
        while pos < end:
            state = self._state
            if state == _DATA:
                take = min(self._remaining, end - pos)
                self._on_data(data[pos:pos + take] if pos or take != end else data)
                pos += take
                self._remaining -= take
                if not self._remaining:
                    self._state = _DATA_END
            elif state == _DATA_END:  # the CRLF after a chunk's data
                pos = self._expect_crlf(data, pos)
            else:
                newline = data.find(b"\n", pos)
                if newline < 0:
                    self._add_line(data[pos:])
                    return end
                line = self._line + data[pos:newline + 1] if self._line else data[pos:newline + 1]
                self._line = b""
                pos = newline + 1
                if state == _SIZE:
                    self._size_line(line)
                else:
                    self._trailer_line(line)
                    if self.done:
                        return pos
        return end

    def _expect_crlf(self, data: bytes, pos: int) -> int:
        need = b"\r\n"[len(self._line):]  # "\r" may have come at the end of the previous read
        got = data[pos:pos + len(need)]
        if not need.startswith(got):
            raise _framing_error()
        if len(got) < len(need):
            self._line += got
            return len(data)
        self._line = b""
        self._state = _SIZE
        return pos + len(got)

    def _add_line(self, piece: bytes) -> None:
        # Refuse as soon as the line, once its LF arrives, must be too long: the same verdict as
        # for the whole line in one read, whatever the split.
        self._line += piece
        if self._state == _SIZE:
            if len(self._line) + 1 > MAX_SIZE_LINE + 2:
                raise ClientError(431, "headers_too_large", "chunk size line too long")
        elif self._trailer_bytes + len(self._line) + 1 > self._max_trailer:
            raise ClientError(431, "headers_too_large", "trailer section too large")

    def _size_line(self, line: bytes) -> None:
        if len(line) > MAX_SIZE_LINE + 2:
            raise ClientError(431, "headers_too_large", "chunk size line too long")
        if not line.endswith(b"\r\n"):
            raise _framing_error()
        match = _SIZE_LINE.fullmatch(line, 0, len(line) - 2)
        if match is None:
            raise _framing_error()
        digits = match.group(1).lstrip(b"0")
        if len(digits) > 16:
            raise _too_large()  # more than 64 bits: more than any limit
        size = _hex(digits)
        if self._max_body and self._body + size > self._max_body:
            raise _too_large()  # refused before any byte of this chunk is delivered
        self._body += size
        if size:
            self._remaining = size
            self._state = _DATA
        else:
            self._state = _TRAILER

    def _trailer_line(self, line: bytes) -> None:
        self._trailer_bytes += len(line)
        if self._trailer_bytes > self._max_trailer:
            raise ClientError(431, "headers_too_large", "trailer section too large")
        if line == b"\r\n":
            self._state = _DONE
            self.done = True
            return
        if not line.endswith(b"\r\n") or _TRAILER_FIELD.fullmatch(line, 0, len(line) - 2) is None:
            raise bad_request("invalid trailer field")
        if line[:line.index(b":")].lower() in _FRAMING_FIELDS:  # framing is the head's alone (as llhttp)
            raise bad_request("invalid trailer field")


def _hex(digits: bytes) -> int:
    """A chunk size, computed by hand: wire numbers never go through int()."""
    total = 0
    for byte in digits:
        total = total * 16 + (byte - 48 if byte <= 57 else (byte | 0x20) - 87)
    return total
