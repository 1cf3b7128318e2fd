"""Routes compiled from config: the trie lookup and what each matched route does.

Every path pattern of every route becomes one trie entry whose id is its index in ``entries``
(config order), so the trie's tie-break "lower id first" is "earlier in the file first", and the
entry also tells the path transforms how many segments the pattern matched.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..algo.trie import RouteTrie
from ..http.writer import local_response
from ..filters.context import Filter, split_chain

if TYPE_CHECKING:
    from .service import Service


class LocalReply:
    """A response the gateway gives by itself (static routes, filter short-circuits)."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def render(self, *, keep_alive: bool, head_only: bool, request_id: bytes, request_id_header: bytes) -> bytes:
        return local_response(self.status, self.headers, self.body, keep_alive=keep_alive, head_only=head_only,
                              request_id=request_id, request_id_header=request_id_header)


class Route:
    """What to do with a matched request: forward to ``service`` or answer with ``reply``."""

    __slots__ = ("name", "service", "reply", "preserve_host", "request_filters", "response_filters", "metric_slot",
                 "upgrades")

    def __init__(self, name: str, service: "Service | None", reply: LocalReply | None, preserve_host: bool,
                 filters: tuple[Filter, ...] = (), upgrades: frozenset[bytes] = frozenset((b"websocket",))) -> None:
        self.name = name
        self.upgrades = upgrades  # lowercase protocol names a client may switch to here
        self.metric_slot = 0  # this route's counters in shared memory (0: the "no route" slot)
        self.service = service
        self.reply = reply
        self.preserve_host = preserve_host
        self.request_filters, self.response_filters = split_chain(filters)


class RouteEntry:
    """One path pattern of a route, with the filters that depend on the pattern (path rewrites)."""

    __slots__ = ("route", "pattern", "request_filters", "response_filters")

    def __init__(self, route: Route, pattern: str, filters: tuple[Filter, ...]) -> None:
        self.route = route
        self.pattern = pattern
        request, response = split_chain(filters)
        self.request_filters = request + route.request_filters
        self.response_filters = route.response_filters + response


class Router:
    __slots__ = ("trie", "entries")

    def __init__(self) -> None:
        self.trie = RouteTrie()
        self.entries: list[RouteEntry] = []

    def add(self, entry: RouteEntry, hosts: tuple[str, ...], methods: tuple[str, ...], priority: int) -> None:
        self.trie.add(len(self.entries), entry.pattern, hosts=hosts, methods=methods, priority=priority)
        self.entries.append(entry)

    def match(self, host: str, method: str, path: str) -> tuple[RouteEntry, dict[str, str] | None] | None:
        found = self.trie.match(host, method, path)
        if found is None:
            return None
        return self.entries[found[0]], found[1]


def pattern_segments(pattern: str) -> int:
    """How many leading path segments a prefix/exact pattern covers (``/api/users`` → 2, ``/`` → 0)."""
    body = pattern[1:] if pattern.startswith("=") else pattern
    return len([s for s in body.split("/") if s])
