"""Request-target handling: split path and query, normalize the path before routing.

Routing on the raw target would let ``/%61dmin`` or ``/public/../admin`` slip past a rule for
``/admin``.  So the path is normalized once (RFC 3986 §6.2.2: percent-decoding of unreserved
characters, upper-case hex, removal of dot-segments) and the *normalized* path is both routed and
forwarded, so the upstream sees exactly what the router judged.  ``%2F`` stays encoded: decoding it
would change the segment structure.  A path that climbs above the root is refused with 400.
"""
from __future__ import annotations

from ..errors import bad_request

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HEX = b"0123456789ABCDEF"


def split_target(target: bytes) -> tuple[bytes, bytes, bytes | None]:
    """``(path, query_with_question_mark_or_empty, authority_or_None)`` of a request-target.

    Accepts origin-form (``/p?q``) and absolute-form (``http://host:port/p?q``), whose authority
    overrides the Host header (RFC 9112 §3.2.2).
    """
    authority = None
    if target[:1] != b"/":
        lowered = target[:8].lower()
        if lowered.startswith(b"http://"):
            rest = target[7:]
        elif lowered.startswith(b"https://"):
            rest = target[8:]
        else:
            raise bad_request("invalid request target")
        slash = _first_of(rest, b"/?")
        authority, target = rest[:slash], rest[slash:]
        if not authority or b"@" in authority:
            raise bad_request("invalid request target")
        if target[:1] != b"/":
            target = b"/" + target
    question = target.find(b"?")
    if question < 0:
        return target, b"", authority
    return target[:question], target[question:], authority


def _first_of(data: bytes, chars: bytes) -> int:
    """Index of the first byte of ``data`` that is in ``chars`` (``len(data)`` if none)."""
    for index, byte in enumerate(data):
        if byte in chars:
            return index
    return len(data)


def normalize_path(path: bytes) -> bytes:
    """The normalized form of an origin-form path (raises ClientError 400 when it is invalid)."""
    if b"%" in path:
        path = _normalize_percent(path)
    if b"/." in path:
        path = _remove_dot_segments(path)
    return path


def _normalize_percent(path: bytes) -> bytes:
    out = bytearray()
    i, end = 0, len(path)
    while i < end:
        byte = path[i]
        if byte != 37:  # '%'
            out.append(byte)
            i += 1
            continue
        if i + 3 > end:
            raise bad_request("invalid percent-encoding in path")
        high, low = _hex_value(path[i + 1]), _hex_value(path[i + 2])
        if high < 0 or low < 0:
            raise bad_request("invalid percent-encoding in path")
        value = high * 16 + low
        if value in _UNRESERVED:
            out.append(value)
        elif value == 0:
            raise bad_request("NUL in path")
        else:
            out += b"%" + _HEX[high:high + 1] + _HEX[low:low + 1]
        i += 3
    return bytes(out)


def _hex_value(byte: int) -> int:
    if 48 <= byte <= 57:
        return byte - 48
    byte |= 0x20  # ASCII lower-case
    if 97 <= byte <= 102:
        return byte - 87
    return -1


def _remove_dot_segments(path: bytes) -> bytes:
    trailing = path.endswith((b"/.", b"/.."))
    out: list[bytes] = []
    for segment in path.split(b"/")[1:]:
        if segment == b"..":
            if not out:
                raise bad_request("path escapes the root")
            out.pop()
        elif segment != b".":
            out.append(segment)
    result = b"/" + b"/".join(out)
    if trailing and not result.endswith(b"/"):
        result += b"/"
    return result
