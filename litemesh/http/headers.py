"""Header rules shared by both directions: hop-by-hop stripping, Host and request-id validation.

Header names arrive as raw bytes from httptools; the hot path lowercases each name once and looks it
up in the small tables below, so classification is a dict/set lookup, never a regex.
"""
from __future__ import annotations

import os
import re

#: RFC 9110 §7.6.1 connection-specific fields, plus Proxy-* which address this proxy only.
HOP_BY_HOP: frozenset[bytes] = frozenset({
    b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding",
    b"upgrade", b"proxy-authenticate", b"proxy-authorization",
})

# Host: reg-name / IPv4 / [IPv6], optional port. Letters, digits, '-', '.', '_' only in names.
_HOST_RE = re.compile(rb"(?:[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,251}[A-Za-z0-9_.])?|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")
# A client-supplied request id is kept only if it is short and harmless in logs and headers.
_REQUEST_ID_RE = re.compile(rb"[A-Za-z0-9._:+/=-]{1,128}")


def connection_tokens(value: bytes) -> list[bytes]:
    """The lowercase tokens of a Connection header value (``b"close, X-Foo"`` → ``[b"close", b"x-foo"]``)."""
    return [token.strip().lower() for token in value.split(b",") if token.strip()]


#: what FieldKinds.seen holds for a name it has not learnt yet
UNSEEN = object()


class FieldKinds:
    """Header name -> kind from a lowercase ``table``, memoizing raw spellings (bounded).

    Peers repeat the same few spellings ("Content-Type"), so the hot path is one dict lookup
    (``seen.get(name, UNSEEN)``) instead of ``name.lower()`` and a lookup; ``learn`` fills it.
    Names not in the table map to None.  Most names need no lookup at all: ``letters`` has a 1 at
    ``length * 256 + first byte (lower case)`` for the length and first letter of each name in the
    table, so a name of ``longest`` bytes or more, or with a 0 there, is known to be none of them.
    """

    __slots__ = ("table", "seen", "limit", "letters", "longest")

    def __init__(self, table: dict[bytes, int], limit: int = 4096) -> None:
        self.table = table
        self.seen: dict[bytes, int | None] = {}
        self.limit = limit
        self.longest = max((len(name) for name in table), default=0) + 1
        letters = bytearray(self.longest * 256)
        for name in table:
            if name:  # (an empty name, as a request-id field turned off, matches no field)
                letters[len(name) * 256 + name[0]] = 1  # (the table's names are lower case)
        self.letters = bytes(letters)

    def may_hold(self, name: bytes) -> bool:
        """False if ``name`` (any case) is certainly not in the table."""
        length = len(name)
        return 0 < length < self.longest and self.letters[length * 256 + (name[0] | 0x20)] == 1

    def learn(self, name: bytes) -> int | None:
        kind = self.table.get(name.lower())
        if len(self.seen) < self.limit and len(name) <= 64:  # clients choose names: bound the memory
            self.seen[name] = kind
        return kind


def upgrade_protocols(value: bytes) -> list[bytes]:
    """Lowercase protocol names of an Upgrade value (``b"WebSocket, h2c/1"`` → ``[b"websocket", b"h2c"]``)."""
    return [token.split(b"/", 1)[0].strip().lower() for token in value.split(b",") if token.strip()]


_CONNECTION_OPTIONS = frozenset((b"close", b"keep-alive", b"upgrade"))
_CONNECTION_NAMED: dict[bytes, frozenset[bytes]] = {}


def connection_named(value: bytes) -> frozenset[bytes]:
    """Field names a Connection value makes hop-by-hop, beyond its close/keep-alive/upgrade options.

    Memoized (bounded): upstreams send the same few values, and an empty answer lets the caller
    skip re-scanning every header of the response.
    """
    memo = _CONNECTION_NAMED  # (compiled: a typed dict, so the lookup is a C call)
    named = memo.get(value)
    if named is None:
        named = frozenset(connection_tokens(value)) - _CONNECTION_OPTIONS
        if len(memo) < 256:
            memo[value] = named
    return named


def valid_host(value: bytes) -> bool:
    """True if ``value`` is a syntactically valid Host header (RFC 9110 §7.2, RFC 3986 authority)."""
    if _HOST_RE.fullmatch(value) is None:
        return False
    port_sep = value.rfind(b":")
    if port_sep > value.rfind(b"]"):
        port = value[port_sep + 1:]
        return 0 < len(port) <= 5 and 0 < _digits_value(port) <= 65535
    return True


def host_without_port(value: bytes) -> str:
    """Lowercase host name for routing: ``b"API.Example.com:8080"`` → ``"api.example.com"``."""
    if value.startswith(b"["):
        end = value.find(b"]")
        return value[: end + 1].decode("ascii").lower()
    port_sep = value.find(b":")
    if port_sep >= 0:
        value = value[:port_sep]
    return value.decode("ascii").lower()


_ROUTING_HOSTS: dict[bytes, str] = {}


def routing_host(value: bytes) -> str | None:
    """Validated, normalized host of a Host value (None if invalid), memoized: hosts repeat."""
    memo = _ROUTING_HOSTS  # (compiled: a typed dict, so the lookup is a C call)
    host = memo.get(value)
    if host is None:
        if not valid_host(value):
            return None
        if len(memo) >= 4096:
            memo.clear()
        host = memo[value] = host_without_port(value)
    return host


def valid_request_id(value: bytes) -> bool:
    return _REQUEST_ID_RE.fullmatch(value) is not None


def _digits_value(digits: bytes) -> int:
    """Value of an ASCII digit string, computed by hand: wire numbers never go through int()."""
    total = 0
    for byte in digits:
        if not 48 <= byte <= 57:
            return -1
        total = total * 10 + (byte - 48)
    return total


class RequestIdFactory:
    """Unique ids without a syscall per request: a random per-process prefix and a counter.

    The counter is kept as its 16 hex digits, counted up in place like an odometer (almost always
    one digit changes): an id costs one copy of 32 bytes, not a formatting of two numbers."""

    __slots__ = ("_digits",)

    def __init__(self) -> None:
        self._digits = bytearray(os.urandom(8).hex().encode() + b"0" * 16)

    def __call__(self) -> bytes:
        return self.next_id()

    def next_id(self) -> bytes:
        digits = self._digits  # (compiled: a typed bytearray, so each digit is a C byte)
        at = len(digits) - 1
        while at >= 16:
            digit = digits[at]
            if digit == 57:  # "9" -> "a"
                digits[at] = 97
                break
            if digit != 102:  # not "f": one up
                digits[at] = digit + 1
                break
            digits[at] = 48  # "f" -> "0", and carry (after 16**16 ids the counter starts over)
            at -= 1
        return bytes(digits)
