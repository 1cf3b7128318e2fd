"""Request-target handling: split path and query, normalize the path before routing.

Routing on the raw target would let ``/%61dmin`` or ``/public/../admin`` slip past a rule for
``/admin``.  So the path is normalized once (RFC 3986 §6.2.2: percent-decoding of unreserved
characters — encoded dots included —, upper-case hex, removal of dot-segments; and, as nginx's
``merge_slashes``, runs of ``/`` merged into one) and the *normalized* path is both routed and
forwarded, so the upstream sees exactly what the router judged.  A path that climbs above the root
is refused with 400.

Some spellings keep a meaning that backends disagree on, so the gateway cannot pick one reading
and forward it: ``%2F`` and ``%5C`` (decoding them would change the segment structure for the
backends that do not), the backslash (a separator to Windows servers) and ``;`` path parameters (dropped
per segment by Java servlet containers: ``/admin;x``, ``/a/..;/admin``).  Those are forwarded as
sent only when :func:`lenient_reading` — the path as the most permissive backend would read it —
matches the same route; the exchange answers 400 otherwise, so no spelling reaches a backend under
a route the backend's own reading would not have matched.
"""
from __future__ import annotations

import re

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
    question = _find(target, 63)  # "?"
    if question < 0:
        return target, b"", authority
    return target[:question], target[question:], authority


def _first_of(data: bytes, chars: bytes) -> int:
    """Index of the first byte of ``data`` that is in ``chars`` (``len(data)`` if none)."""
    for index, byte in enumerate(data):
        if byte in chars:
            return index
    return len(data)


# anything normalize_path may have to change: one C-level scan decides the common, clean case
_NEEDS_WORK = re.compile(rb"%|/[/.]")
# what lenient_reading reads differently from the router (hex is upper-case once normalized)
_AMBIGUOUS = re.compile(rb"%2F|%5C|[\\;]")
_MULTIPLE_SLASHES = re.compile(rb"//+")
# either of the two above: the one scan a clean path (the common case) costs
_ANY_WORK = re.compile(rb"[%;\\]|/[/.]")
#: compiled, the scans below are C loops over the bytes; the pure build asks re and bytes.find
_COMPILED = not __file__.endswith(".py")


def _any_work(path: bytes) -> bool:
    """``_ANY_WORK.search(path) is not None``: one C loop, compiled."""
    if _COMPILED:
        buf = path
        end = len(path)
        at = 0
        while at < end:
            byte = buf[at]
            if byte == 37 or byte == 59 or byte == 92:  # % ; backslash
                return True
            if byte == 47 and at + 1 < end and (buf[at + 1] == 47 or buf[at + 1] == 46):  # // or /.
                return True
            at += 1
        return False
    return _ANY_WORK.search(path) is not None


def _find(data: bytes, byte: int) -> int:
    """``data.find(byte)``: libc's memchr, compiled."""
    if _COMPILED:
        buf = data
        end = len(data)
        at = index_of(buf, byte, 0, end)  # noqa: F821 - bytescan.pxd, compiled build only
        return at if at < end else -1
    return data.find(byte)


def routing_paths(path: bytes, merge_slashes: bool = True) -> tuple[bytes, bytes | None]:
    """``(normalize_path(path), lenient_reading(...))`` with a single scan when there is nothing to do."""
    if not _any_work(path):
        return path, None
    path = normalize_path(path, merge_slashes)
    return path, lenient_reading(path)


def normalize_path(path: bytes, merge_slashes: bool = True) -> bytes:
    """The normalized form of an origin-form path (raises ClientError 400 when it is invalid)."""
    if _NEEDS_WORK.search(path) is None:
        return path
    if b"%" in path:
        path = _normalize_percent(path)
    if merge_slashes and b"//" in path:
        path = _MULTIPLE_SLASHES.sub(b"/", path)
    if b"/." in path:
        path = _remove_dot_segments(path)
    return path


def lenient_reading(path: bytes) -> bytes | None:
    """A normalized path as the most lenient backend reads it, or None when every backend reads
    it as the router does.  Raises ClientError 400 when that reading climbs above the root."""
    if _AMBIGUOUS.search(path) is None:
        return None
    lenient = path.replace(b"%2F", b"/").replace(b"%5C", b"/").replace(b"\\", b"/")
    if b";" in lenient:  # servlet containers drop ;parameters from every segment
        lenient = b"/".join(segment.split(b";", 1)[0] for segment in lenient.split(b"/"))
    lenient = _MULTIPLE_SLASHES.sub(b"/", lenient)
    if b"/." in lenient:
        lenient = _remove_dot_segments(lenient)
    return lenient


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
