"""The route table: host buckets of path-segment tries, in pure Python and compiled twins.

Theory of operation
-------------------
Every ``add`` is validated by :mod:`litemesh.algo._route_pattern` (shared by both twins, so both
raise the same :class:`RoutePatternError`) and stored as one *slot* per host it names, in that
host's *bucket*: exact host names and wildcard suffixes (``*.example.com`` -> ``example.com``) each
have a bucket in a dict, and routes without hosts go to the "any host" bucket.

A bucket holds a trie keyed by path segment: each node has a dict of literal children and at most
one ``{param}`` child, plus three slot lists -- *prefix* slots (match whenever the walk reaches the
node), *slash* slots (pattern ended in ``/``: the path must go on) and *exact* slots (the path must
end here). Regex slots sit in a flat list per bucket.

Each slot carries a rank ``(-priority, -spec, route_id, add_seq)`` -- lower is better -- where
``spec`` packs host specificity, path kind and the segment tie-breaks into one int (see
``pack_spec``); every slot list is kept sorted by rank, and each node remembers the best rank in its
subtree. Selection is therefore "minimum rank over all matching slots", and ``match``:

1. looks up the buckets that apply to the host (exact, then each wildcard suffix by walking the
   host's dots -- dict lookups, never a scan of all wildcards -- then "any"), cached per host;
2. walks each bucket's trie along the path's segments, following both the literal child and the
   param child, taking the first method-compatible slot of each list it passes and pruning any
   subtree or bucket whose best rank cannot beat the current candidate;
3. tries the bucket's regexes in rank order only while they could still win, so a regex is only
   evaluated if its (priority, host) is strictly better than the best trie candidate.

Cost: independent of the number of non-regex routes (a dict lookup per path segment, plus a
param branch where one exists); linear in the number of regex routes that could still win --
regexes are the last resort, keep them few.
"""
from __future__ import annotations

from bisect import insort
from collections.abc import Sequence
from operator import attrgetter
from re import Match
from typing import Optional

from ._route_pattern import (
    HOST_ANY, HOST_EXACT, KIND_EXACT, KIND_REGEX, ParsedPath, RoutePatternError, check_int, pack_spec,
    parse_hosts, parse_methods, parse_path,
)

__all__ = ["RouteTrie", "RouteTriePy", "RouteTrieC", "RoutePatternError"]

#: distinct hosts remembered by the bucket cache before it is emptied (bounds memory vs. Host spam)
HOST_CACHE_SIZE = 4096

_rank_of = attrgetter("rank")


class _Slot:
    """One (route, path pattern, host) entry as the trie stores it."""

    __slots__ = ("rank", "route_id", "methods", "param_names", "param_pos", "regex")

    def __init__(self, rank: tuple[int, int, int, int], route_id: int, methods: Optional[frozenset[str]],
                 parsed: ParsedPath) -> None:
        self.rank = rank
        self.route_id = route_id
        self.methods = methods
        self.param_names = parsed.param_names
        # +1: match() splits the whole path, so segment 0 is the empty string before the leading "/"
        self.param_pos = tuple(pos + 1 for pos in parsed.param_pos)
        self.regex = parsed.regex


class _Node:
    __slots__ = ("children", "param", "prefix", "slash", "exact", "top")

    def __init__(self) -> None:
        self.children: Optional[dict[str, _Node]] = None
        self.param: Optional[_Node] = None
        self.prefix: Optional[list[_Slot]] = None
        self.slash: Optional[list[_Slot]] = None
        self.exact: Optional[list[_Slot]] = None
        self.top: Optional[_Slot] = None  # best slot anywhere in this subtree

    def child(self, seg: Optional[str]) -> _Node:
        """The child for literal ``seg`` (or the param child for None), created on demand."""
        if seg is None:
            if self.param is None:
                self.param = _Node()
            return self.param
        if self.children is None:
            self.children = {}
        node = self.children.get(seg)
        if node is None:
            node = self.children[seg] = _Node()
        return node


class _Bucket:
    """Everything added for one host key (or for any host)."""

    __slots__ = ("root", "regexes", "top")

    def __init__(self) -> None:
        self.root = _Node()
        self.regexes: list[_Slot] = []
        self.top: Optional[_Slot] = None

    def insert(self, slot: _Slot, parsed: ParsedPath) -> None:
        self.top = _better(slot, self.top)
        if parsed.kind == KIND_REGEX:
            insort(self.regexes, slot, key=_rank_of)
            return
        node = self.root
        node.top = _better(slot, node.top)
        for seg in parsed.segments:
            node = node.child(seg)
            node.top = _better(slot, node.top)
        if parsed.kind == KIND_EXACT:
            node.exact = _inserted(node.exact, slot)
        elif parsed.slash:
            node.slash = _inserted(node.slash, slot)
        else:
            node.prefix = _inserted(node.prefix, slot)


def _better(slot: _Slot, other: Optional[_Slot]) -> _Slot:
    return slot if other is None or slot.rank < other.rank else other


def _inserted(slots: Optional[list[_Slot]], slot: _Slot) -> list[_Slot]:
    if slots is None:
        return [slot]
    insort(slots, slot, key=_rank_of)
    return slots


def _pick(slots: list[_Slot], method: str, best: Optional[_Slot]) -> Optional[_Slot]:
    """The first slot of the rank-sorted list that allows ``method`` and beats ``best``."""
    for slot in slots:
        if best is not None and slot.rank >= best.rank:
            break
        if slot.methods is None or method in slot.methods:
            return slot
    return best


def _walk(node: _Node, segs: list[str], depth: int, method: str, best: Optional[_Slot]) -> Optional[_Slot]:
    """Best slot in ``node``'s subtree for the path segments ``segs[depth:]``."""
    if best is not None and node.top.rank >= best.rank:  # type: ignore[union-attr]
        return best  # nothing below can win: prune
    if node.prefix is not None:
        best = _pick(node.prefix, method, best)
    if depth < len(segs):
        if node.slash is not None:
            best = _pick(node.slash, method, best)
        seg = segs[depth]
        if node.children is not None:
            child = node.children.get(seg)
            if child is not None:
                best = _walk(child, segs, depth + 1, method, best)
        if node.param is not None and seg:
            best = _walk(node.param, segs, depth + 1, method, best)
    elif node.exact is not None:
        best = _pick(node.exact, method, best)
    return best


class RouteTriePy:
    """Pure-Python route table; see the module docstring and ``litemesh/_speedups/trie.pyi``."""

    def __init__(self) -> None:
        self._any = _Bucket()
        self._exact: dict[str, _Bucket] = {}
        self._wild: dict[str, _Bucket] = {}
        self._host_cache: dict[str, tuple[_Bucket, ...]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, route_id: int, path: str, *, hosts: Sequence[str] = (), methods: Sequence[str] = (),
            priority: int = 0) -> None:
        """Add one path pattern of route ``route_id``; raise RoutePatternError if anything is invalid."""
        rid = check_int("route_id", route_id)
        prio = check_int("priority", priority)
        parsed = parse_path(path)
        host_keys = parse_hosts(hosts) or [("", HOST_ANY)]
        allowed = parse_methods(methods)
        # validated: from here on nothing raises, so a failed add leaves the table untouched
        for key, host_rank in host_keys:
            rank = (-prio, -pack_spec(host_rank, parsed), rid, self._count)
            self._bucket(key, host_rank).insert(_Slot(rank, rid, allowed, parsed), parsed)
        self._count += 1
        self._host_cache.clear()

    def _bucket(self, key: str, host_rank: int) -> _Bucket:
        if host_rank == HOST_ANY:
            return self._any
        table = self._exact if host_rank == HOST_EXACT else self._wild
        bucket = table.get(key)
        if bucket is None:
            bucket = table[key] = _Bucket()
        return bucket

    def _buckets_for(self, host: str) -> tuple[_Bucket, ...]:
        """Non-empty buckets that apply to ``host``, most specific first."""
        found: list[_Bucket] = []
        bucket = self._exact.get(host)
        if bucket is not None:
            found.append(bucket)
        if self._wild:
            dot = host.find(".", 1)  # "*." needs at least one character before the suffix
            while dot > 0:
                bucket = self._wild.get(host[dot + 1:])
                if bucket is not None:
                    found.append(bucket)
                dot = host.find(".", dot + 1)
        if self._any.top is not None:
            found.append(self._any)
        result = tuple(found)
        if len(self._host_cache) >= HOST_CACHE_SIZE:
            self._host_cache.clear()
        self._host_cache[host] = result
        return result

    def match(self, host: str, method: str, path: str) -> Optional[tuple[int, Optional[dict[str, str]]]]:
        """``(route_id, params)`` of the best entry for the request, or None."""
        buckets = self._host_cache.get(host)
        if buckets is None:
            buckets = self._buckets_for(host)
        # path[0] is "/" by contract; anything else can only match a regex
        segs = path.split("/") if path[:1] == "/" else None
        best: Optional[_Slot] = None
        found: Optional[Match[str]] = None
        for bucket in buckets:
            if best is not None and bucket.top.rank >= best.rank:  # type: ignore[union-attr]
                continue
            if segs is not None and bucket.root.top is not None:
                best = _walk(bucket.root, segs, 1, method, best)
            for slot in bucket.regexes:
                if best is not None and slot.rank >= best.rank:
                    break
                if slot.methods is None or method in slot.methods:
                    hit = slot.regex.match(path)  # type: ignore[union-attr]
                    if hit is not None:
                        best, found = slot, hit
                        break
        if best is None:
            return None
        return best.route_id, _params(best, segs, found)


def _params(slot: _Slot, segs: Optional[list[str]], found: Optional[Match[str]]) -> Optional[dict[str, str]]:
    if slot.regex is not None:
        if not slot.param_names:
            return None
        # optional named groups that did not take part are left out rather than mapped to None
        return {name: value for name, value in found.groupdict().items() if value is not None}  # type: ignore[union-attr]
    if not slot.param_pos:
        return None
    return {name: segs[pos] for name, pos in zip(slot.param_names, slot.param_pos)}  # type: ignore[index]


# The one switch point: the compiled twin when it was built and extensions are allowed.
from .. import _ext  # noqa: E402

_c = _ext.load("trie")
RouteTrieC = _c.RouteTrie if _c is not None else None
RouteTrie = RouteTrieC if RouteTrieC is not None else RouteTriePy
