"""Parsers for the human-friendly scalar forms used in gateway.yaml: durations, sizes, addresses,
service targets."""
from __future__ import annotations

import ipaddress
import math
import re

__all__ = ["parse_duration", "parse_size", "parse_address", "parse_target", "target_key", "is_ip_literal",
           "DURATION_PATTERN", "SIZE_PATTERN"]

_DURATION_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# One or more "<number><unit>" parts ("1m30s"); a bare number means seconds.
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(us|µs|ms|s|m|h)")
_DURATION_FULL = re.compile(r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:us|µs|ms|s|m|h))+")
_BARE_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")

# Decimal (SI) and binary (IEC) multipliers; case-insensitive so "kib" and "KiB" both work.
_SIZE_UNITS = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}
_SIZE_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)", re.IGNORECASE)

# Exported so the JSON Schema accepts exactly what these parsers accept.
DURATION_PATTERN = (r"^\s*(?:(?:(?:\d+(?:\.\d*)?|\.\d+)(?:us|µs|ms|s|m|h))+"
                    r"|\d+(?:\.\d*)?|\.\d+)\s*$")
SIZE_PATTERN = r"^\s*(?:\d+(?:\.\d*)?|\.\d+)\s*(?:[bB]|[kKmMgGtT][iI]?[bB])?\s*$"

_HOSTNAME_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
# an IPv6 zone (scope) is an interface name or index: printable ASCII (it ends up in Host headers)
_ZONE_ID = re.compile(r"[A-Za-z0-9_.~-]{1,64}")


def _check_number(value: object, what: str) -> float:
    # bool is an int subclass; "true" as a timeout is always a mistake.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"invalid {what} {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"invalid {what} {value!r}: must be finite")
    if value < 0:
        raise ValueError(f"invalid {what} {value!r}: must not be negative")
    return value


def parse_duration(value: str | int | float) -> float:
    """Return seconds for "250ms", "1.5s", "2m", "1h", "500us", "1m30s", "10" or a number."""
    if not isinstance(value, str):
        return float(_check_number(value, "duration"))
    text = value.strip()
    if _BARE_NUMBER.fullmatch(text):
        return float(text)
    if text.startswith("-"):
        raise ValueError(f"invalid duration {value!r}: must not be negative")
    if not _DURATION_FULL.fullmatch(text):
        raise ValueError(f"invalid duration {value!r}: expected e.g. '250ms', '30s', '2m', '1h'")
    return sum(float(num) * _DURATION_UNITS[unit] for num, unit in _DURATION_PART.findall(text))


def parse_size(value: str | int | float) -> int:
    """Return bytes for "512KiB", "1MiB", "10KB" (=10_000), "1MB", "100" or an integral number."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("-"):
            raise ValueError(f"invalid size {value!r}: must not be negative")
        match = _SIZE_RE.fullmatch(text)
        unit = match.group(2).lower() if match else None
        if match is None or unit not in _SIZE_UNITS:
            raise ValueError(f"invalid size {value!r}: expected e.g. '512KiB', '1MiB', '10KB'")
        number = float(match.group(1)) * _SIZE_UNITS[unit]
    else:
        number = _check_number(value, "size")
    if number != int(number):
        raise ValueError(f"invalid size {value!r}: not a whole number of bytes")
    return int(number)


def _check_host(host: str, original: str) -> None:
    if not host:
        raise ValueError(f"invalid address {original!r}: missing host")
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    if len(host) > 253 or not all(_HOSTNAME_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"invalid address {original!r}: bad host {host!r}")


def format_address(host: str, port: int) -> str:
    """The inverse of :func:`parse_address`: ``host:port``, an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_address(value: str, *, allow_port_zero: bool = False) -> tuple[str, int]:
    """Split "host:port", "[v6]:port" into (host, port); IPv6 hosts are returned without brackets."""
    if not isinstance(value, str):
        raise ValueError(f"invalid address {value!r}: expected 'host:port'")
    return _split_host_port(value.strip(), value, allow_port_zero=allow_port_zero)


def _split_host_port(text: str, value: str, *, allow_port_zero: bool) -> tuple[str, int]:
    """`text` is "host:port" or "[v6]:port"; messages quote the user's `value`."""
    if text.startswith("["):
        close = text.find("]")
        if close < 0 or text[close + 1:close + 2] != ":":
            raise ValueError(f"invalid address {value!r}: expected '[ipv6]:port'")
        host, port_text = text[1:close], text[close + 2:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"invalid address {value!r}: bad IPv6 address {host!r}") from None
        zone = host.partition("%")[2]
        if zone and not _ZONE_ID.fullmatch(zone):   # ipaddress takes any text as a zone ("%eth0")
            raise ValueError(f"invalid address {value!r}: bad IPv6 zone {zone!r} (an interface name or number)")
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise ValueError(f"invalid address {value!r}: expected 'host:port'")
        if ":" in host:
            raise ValueError(f"invalid address {value!r}: IPv6 hosts must be written as '[addr]:port'")
        _check_host(host, value)
    if not port_text.isascii() or not port_text.isdigit():
        raise ValueError(f"invalid address {value!r}: port must be a number")
    port = int(port_text)
    low = 0 if allow_port_zero else 1
    if not low <= port <= 65535:
        raise ValueError(f"invalid address {value!r}: port must be in {low}..65535")
    return host, port


# "scheme://" at the start of a target: the URL form.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
HTTP_DEFAULT_PORT = 80
_URL_PARTS = {"/": "a path", "?": "a query", "#": "a fragment"}


def parse_target(value: str) -> tuple[str, int]:
    """Split a service target into (host, port).

    Accepted: "host:port", "[v6]:port", and the URL form "http://host:port" or "http://host"
    (port 80), "http://[v6]:port".  A target names a server, nothing more: https (no upstream TLS
    yet), other schemes, user info, paths (even "/": in nginx's proxy_pass a URI part changes the
    upstream path, which would mislead), queries and fragments are refused with a message saying so.
    """
    if not isinstance(value, str):
        raise ValueError(f"invalid address {value!r}: expected 'host:port' or 'http://host:port'")
    text = value.strip()
    scheme = _SCHEME.match(text)
    if scheme is None:
        return _split_host_port(text, value, allow_port_zero=False)
    name = scheme.group(1).lower()
    if name == "https":
        raise ValueError("https:// targets are not supported yet: upstream TLS is not implemented")
    if name != "http":
        raise ValueError(f"invalid address {value!r}: unsupported scheme '{name}://' (only http:// is supported)")
    authority = text[scheme.end():]
    cut = min((i for i in map(authority.find, "/?#") if i >= 0), default=-1)
    if cut >= 0:
        rest = authority[cut:]
        what = _URL_PARTS[rest[0]]
        hint = " (the upstream path comes from the request; see strip_prefix and rewrite)" if what == "a path" else ""
        raise ValueError(f"invalid address {value!r}: a target must not have {what} ({rest!r}){hint}")
    if "@" in authority:
        raise ValueError(f"invalid address {value!r}: a target must not have user info ('...@')")
    if authority.rfind(":") <= authority.rfind("]"):  # "host" or "[v6]": HTTP's default port
        authority += f":{HTTP_DEFAULT_PORT}"
    return _split_host_port(authority, value, allow_port_zero=False)


def is_ip_literal(host: str) -> bool:
    """True for "127.0.0.1" or "::1" (hosts as parse_address returns them), False for names."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def target_key(host: str, port: int) -> tuple[str, int]:
    """What makes two targets the same server: names compare case-insensitively, IP addresses by
    value ("::1" = "0:0::1"), so "http://A:80", "a:80" and "a" + default port are one target."""
    try:
        return str(ipaddress.ip_address(host)), port
    except ValueError:
        return host.lower(), port
