"""Route pattern parsing and validation, shared by both route-trie twins.

Both ``RouteTriePy`` and the compiled ``RouteTrie`` call these helpers from ``add``, so an invalid
pattern, host, method or number raises the same :class:`RoutePatternError` with the same message
whichever twin is in use. Nothing here is on the match hot path.

The selection order of the trie is encoded here too, as two integers per entry:
``priority`` and a packed ``spec`` (host specificity, path kind, segment counts, pattern length), so
each twin compares candidates with at most four integer comparisons.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Optional

__all__ = [
    "RoutePatternError", "ParsedPath", "KIND_REGEX", "KIND_PREFIX", "KIND_EXACT",
    "HOST_ANY", "HOST_EXACT", "parse_path", "parse_hosts", "parse_methods", "check_int", "pack_spec",
    "MAX_SEGMENTS", "MAX_PATTERN_LEN", "PATH_CHARS_RE",
]


class RoutePatternError(ValueError):
    """An invalid route: bad path pattern, host, method, route id or priority."""


#: path kinds, in increasing order of preference
KIND_REGEX, KIND_PREFIX, KIND_EXACT = 0, 1, 2
#: host specificity: no restriction < wildcard (1 + suffix length, at most 254) < exact name
HOST_ANY, HOST_EXACT = 0, 512

MAX_SEGMENTS = 128  # keeps the trie walk's recursion shallow in both twins
MAX_PATTERN_LEN = 8192  # fits the 32-bit length field of the packed spec
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1

_PARAM_RE = re.compile(r"\{([^{}/]*)\}")
# What may appear in a path pattern: printable ASCII without query/fragment delimiters (the config
# loader checks the same, so what `litemesh check` accepts compiles).
PATH_CHARS_RE = re.compile(r"[!$&'()*+,\-./0-9:;=@A-Z\[\]_a-z{}~%]*")
# Same grammar as litemesh.http.headers accepts for Host: a reg-name or a bracketed IPv6 literal.
_HOST_RE = re.compile(r"[a-z0-9_](?:[a-z0-9_.-]{0,251}[a-z0-9_.])?|\[[0-9a-f:.]{2,45}\]")
# RFC 9110 token (method names).
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Z]+")


class ParsedPath:
    """One validated path pattern.

    ``segments`` are the pattern's path segments after the leading ``/``; ``None`` stands for a
    ``{param}`` segment. For a prefix pattern a trailing ``/`` is not a segment but sets ``slash``
    (the path must continue past the last segment); an exact pattern keeps it as a final ``""``.
    ``param_pos[i]`` is the segment index captured as ``param_names[i]``.
    """

    __slots__ = ("source", "kind", "segments", "slash", "param_names", "param_pos", "regex",
                 "nseg", "nlit", "plen")

    def __init__(self, source: str, kind: int, segments: tuple[Optional[str], ...], slash: bool,
                 param_names: tuple[str, ...], param_pos: tuple[int, ...], regex: Optional[re.Pattern[str]],
                 plen: int) -> None:
        self.source = source
        self.kind = kind
        self.segments = segments
        self.slash = slash
        self.param_names = param_names
        self.param_pos = param_pos
        self.regex = regex
        # tie-break counts: non-empty segments, and those of them that are literal
        self.nseg = sum(1 for seg in segments if seg != "")
        self.nlit = self.nseg - len(param_pos)
        self.plen = plen


def parse_path(pattern: object) -> ParsedPath:
    """Validate ``pattern`` (``/prefix``, ``=/exact`` or ``~regex``) and split it for the trie."""
    if not isinstance(pattern, str):
        raise RoutePatternError(f"route path must be a str, not {type(pattern).__name__}")
    if len(pattern) > MAX_PATTERN_LEN:
        raise RoutePatternError(f"route path {pattern[:40]!r}... is longer than {MAX_PATTERN_LEN} characters")
    if pattern.startswith("~"):
        return _parse_regex(pattern)
    if pattern.startswith("="):
        return _parse_segments(pattern, pattern[1:], KIND_EXACT)
    return _parse_segments(pattern, pattern, KIND_PREFIX)


def _parse_regex(pattern: str) -> ParsedPath:
    source = pattern[1:]
    if not source:
        raise RoutePatternError("route path '~' has an empty regex")
    try:
        regex = re.compile(source)
    except re.error as exc:
        raise RoutePatternError(f"route path {pattern!r}: invalid regex: {exc}") from None
    return ParsedPath(pattern, KIND_REGEX, (), False, tuple(regex.groupindex), (), regex, len(source))


def _parse_segments(pattern: str, path: str, kind: int) -> ParsedPath:
    if not path.startswith("/"):
        raise RoutePatternError(f"route path {pattern!r} must start with '/' (or '=/' for exact, '~' for regex)")
    if PATH_CHARS_RE.fullmatch(path) is None:
        raise RoutePatternError(f"route path {pattern!r} contains whitespace, control, '?', '#' or non-ASCII characters")
    raw = path[1:].split("/")
    slash = False
    if raw[-1] == "" and kind == KIND_PREFIX:
        raw.pop()  # "/a/" = "/a" that must continue; "/" = no segments, matches everything
        slash = True
    if len(raw) > MAX_SEGMENTS:
        raise RoutePatternError(f"route path {pattern!r} has more than {MAX_SEGMENTS} segments")
    segments: list[Optional[str]] = []
    names: list[str] = []
    positions: list[int] = []
    for index, seg in enumerate(raw):
        name = _param_name(pattern, seg, last=index == len(raw) - 1)
        if name is None:
            segments.append(seg)
            continue
        if name in names:
            raise RoutePatternError(f"route path {pattern!r} uses parameter {{{name}}} twice")
        names.append(name)
        positions.append(index)
        segments.append(None)
    return ParsedPath(pattern, kind, tuple(segments), slash, tuple(names), tuple(positions), None, len(path))


def _param_name(pattern: str, seg: str, last: bool) -> Optional[str]:
    """The parameter name if ``seg`` is ``{name}``, None for a literal; raise on anything else."""
    if seg == "" and not last:
        raise RoutePatternError(f"route path {pattern!r} has an empty segment ('//')")
    if "{" not in seg and "}" not in seg:
        return None
    found = _PARAM_RE.fullmatch(seg)
    if found is None:
        raise RoutePatternError(
            f"route path {pattern!r}: segment {seg!r} is a partial-segment template; "
            "a parameter must be a whole segment like '{name}'")
    name = found.group(1)
    if not name.isidentifier():
        raise RoutePatternError(f"route path {pattern!r}: parameter name {name!r} is not a Python identifier")
    return name


def parse_hosts(hosts: object) -> list[tuple[str, int]]:
    """Validate ``hosts``; return ``(key, specificity)`` pairs, deduplicated, in input order.

    The key of an exact host is the lowercased name; of ``*.example.com`` it is ``example.com``
    and the specificity is ``1 + len("example.com")``. An empty list means any host.
    """
    names = _str_sequence("hosts", hosts)
    out: list[tuple[str, int]] = []
    for name in names:
        item = _parse_host(name)
        if item not in out:
            out.append(item)
    return out


def _parse_host(name: str) -> tuple[str, int]:
    host = name.lower()
    wildcard = host.startswith("*.")
    suffix = host[2:] if wildcard else host
    if "*" in suffix or _HOST_RE.fullmatch(suffix) is None or (wildcard and suffix.startswith("[")):
        raise RoutePatternError(
            f"route host {name!r} is invalid: expected a host name like 'api.example.com' "
            "or a leading wildcard like '*.example.com'")
    return (suffix, 1 + len(suffix)) if wildcard else (host, HOST_EXACT)


def parse_methods(methods: object) -> Optional[frozenset[str]]:
    """Validate ``methods`` (HTTP tokens, uppercased); None means any method."""
    names = _str_sequence("methods", methods)
    out: set[str] = set()
    for name in names:
        method = name.upper()
        if _TOKEN_RE.fullmatch(method) is None:
            raise RoutePatternError(f"route method {name!r} is not a valid HTTP method token")
        out.add(method)
    return frozenset(out) if out else None


def _str_sequence(what: str, value: object) -> Sequence[str]:
    # A bare str is a Sequence[str] too; treating "GET" as ("G", "E", "T") is never what was meant.
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, set, frozenset)):
        raise RoutePatternError(f"route {what} must be a sequence of str, not {type(value).__name__}")
    for item in value:
        if not isinstance(item, str):
            raise RoutePatternError(f"route {what} must contain str, not {type(item).__name__}")
    return list(value)


def check_int(what: str, value: object) -> int:
    """``value`` as a signed 64-bit int (route ids and priorities are compared as C integers)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise RoutePatternError(f"route {what} must be an int, not {type(value).__name__}")
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise RoutePatternError(f"route {what} {value} does not fit in a signed 64-bit integer")
    return value


def pack_spec(host_rank: int, parsed: ParsedPath) -> int:
    """Selection rules 2-4 as one non-negative int64: bigger is better.

    Bit layout: host specificity (10 bits) | path kind (2) | segments (8) | literal segments (8) |
    pattern length (32). Bounds are enforced by parse_path/parse_hosts.
    """
    return (host_rank << 50) | (parsed.kind << 48) | (parsed.nseg << 40) | (parsed.nlit << 32) | parsed.plen
