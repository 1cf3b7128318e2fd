"""Route paths spelled the way the router sees request paths.

The router never sees a request path as the client sent it: :func:`litemesh.http.target.normalize_path`
percent-decodes unreserved characters (``%7E`` → ``~``), writes every other escape with upper-case
hex (``%c3%a9`` → ``%C3%A9``) and refuses bad escapes and ``%00`` with 400.  A request for ``/é``
arrives as ``/%C3%A9`` (HTTP request targets are ASCII), so that is what it is routed as.

A prefix or exact path of the configuration is put in the same form before it is checked and
compiled: ``/é``, ``/%c3%a9`` and ``/%C3%A9`` are one path, the one such requests match, and a
path that no request could match (a bad escape, ``%00``) is refused with the reason.  Regex paths
are left as written (they are matched against that normalized form).  A ``rewrite`` template only
gets its non-ASCII characters percent-encoded: it is sent upstream, which must get an ASCII target.
"""
from __future__ import annotations

__all__ = ["route_path_form", "encode_non_ascii"]

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def route_path_form(pattern: str) -> str:
    """``pattern`` with its path part as the router sees request paths; raises ValueError for a
    path no request can have.  Regex patterns (``~...``) are returned unchanged."""
    if pattern[:1] == "~" or (pattern.isascii() and "%" not in pattern):
        return pattern   # nothing to do: the common case costs two C-level scans
    out: list[str] = []
    i, end = 0, len(pattern)
    while i < end:
        char = pattern[i]
        if char == "%":
            escape = pattern[i + 1:i + 3]
            if len(escape) < 2 or not set(escape) <= _HEX_DIGITS:
                raise ValueError(f"invalid percent-encoding {pattern[i:i + 3]!r} (a '%' itself is written '%25')")
            value = int(escape, 16)
            if value == 0:
                raise ValueError("'%00' (NUL) can never match: requests with it are refused (400)")
            out.append(chr(value) if chr(value) in _UNRESERVED else "%" + escape.upper())
            i += 3
            continue
        out.append(char if char.isascii() else _percent_encoded(char))
        i += 1
    return "".join(out)


def encode_non_ascii(text: str) -> str:
    """``text`` with each non-ASCII character percent-encoded as UTF-8 (upper-case hex)."""
    if text.isascii():
        return text
    return "".join(char if char.isascii() else _percent_encoded(char) for char in text)


def _percent_encoded(char: str) -> str:
    try:
        encoded = char.encode("utf-8")
    except UnicodeEncodeError:   # a lone surrogate: no request can spell it
        raise ValueError(f"{char!r} is not a Unicode character") from None
    return "".join(f"%{byte:02X}" for byte in encoded)
