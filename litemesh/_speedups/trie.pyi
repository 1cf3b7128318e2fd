"""Compiled route trie; the pure-Python twin is ``litemesh.algo.trie.RouteTriePy``.

Import ``litemesh.algo.trie.RouteTrie`` rather than this module: it picks this class when the
extension was built and ``LITEMESH_NO_EXTENSIONS`` is unset, else the twin. Both give identical
results and raise identical ``litemesh.algo._route_pattern.RoutePatternError`` (a ``ValueError``).
"""
from collections.abc import Sequence

class RouteTrie:
    """Maps (host, method, path) to the best route id and its path parameters.

    **Path patterns** (``add``'s ``path``):

    - ``/a/b`` -- prefix on segment boundaries: matches ``/a/b``, ``/a/b/``, ``/a/b/...``, not
      ``/a/bc``. With a trailing slash (``/a/``) the path must continue: ``/a/``, ``/a/x``, not
      ``/a``. ``/`` matches every path.
    - ``=/a/b`` -- exact: ``/a/b`` only (``/a/b/`` is a different path).
    - ``~regex`` -- Python ``re``, applied with ``pattern.match(path)`` (anchored at the start
      only; end it with ``$`` for a full match). Named groups become params. Regexes are the last
      resort: they are tried only when they could beat every prefix/exact candidate, and their
      cost is linear in their number.
    - In prefix and exact patterns a whole segment ``{name}`` (a Python identifier) matches one
      non-empty segment and captures it. Partial-segment templates (``/f.{ext}``), duplicate or
      invalid names, empty segments (``//``), whitespace/``?``/``#``, a missing leading ``/``, more
      than 128 segments or more than 8192 characters are rejected.

    **Hosts**: exact names (lowercased) or a leading wildcard ``*.example.com`` (matches
    ``a.example.com`` and ``a.b.example.com``, not ``example.com``). Empty = any host.
    **Methods**: HTTP tokens, uppercased on add. Empty = any method.

    **Selection**: of all matching entries the one with the maximum key wins:

    1. higher ``priority``;
    2. host: exact > wildcard (longer suffix first) > no host restriction;
    3. path kind: exact > prefix > regex;
    4. more non-empty pattern segments, then more literal segments, then a longer pattern string
       (without the ``=``/``~`` marker);
    5. lower ``route_id``, then earlier ``add``.

    **Cost**: ``match`` does a dict lookup per host label and per path segment (plus the param
    branch where one exists), independent of the number of non-regex routes; host buckets are
    cached per host (at most 4096 hosts, then the cache restarts).
    """

    def __init__(self) -> None: ...
    def add(self, route_id: int, path: str, *, hosts: Sequence[str] = (), methods: Sequence[str] = (),
            priority: int = 0) -> None:
        """Add one path pattern of route ``route_id`` (call once per pattern of a route).

        ``route_id`` and ``priority`` must be ints in the signed 64-bit range. Raises
        ``RoutePatternError`` (a ``ValueError``) with a message naming the bad pattern, host or
        method; a failed call leaves the table unchanged.
        """
    def match(self, host: str, method: str, path: str) -> tuple[int, dict[str, str] | None] | None:
        """The best entry for a request, as ``(route_id, params)``, or None if nothing matches.

        ``host`` is lowercase without port (may be ``""``), ``method`` uppercase, ``path``
        normalized and starting with ``/`` (any other path can only match regexes). ``params`` is
        None when the winning pattern has no parameters, else a new dict name -> raw segment (for
        a regex: its named groups that took part in the match).
        """
    def __len__(self) -> int:
        """Number of successful ``add`` calls (a route with several patterns counts each one)."""
