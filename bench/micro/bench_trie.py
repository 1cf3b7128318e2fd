"""Micro-benchmarks of the route trie, pure Python vs compiled.

    python -m pytest bench/micro/bench_trie.py --benchmark-only

``match`` is timed against tables of 1, 1,000 and 10,000 realistic API routes (params, exact
health checks, wildcard-host prefixes, a catch-all and a regex in the larger tables): the "hit"
query resolves a param route in the middle of the table, the "miss" query only reaches the
catch-all. ``add`` of 10,000 routes is timed too. The "c" cases are skipped if the extension was
not built or LITEMESH_NO_EXTENSIONS is set.
"""
from __future__ import annotations

import pytest

from litemesh.algo.trie import RouteTrieC, RouteTriePy

IMPLS = {"py": RouteTriePy, "c": RouteTrieC}
SIZES = [1, 1_000, 10_000]


def api_routes(n: int) -> list[tuple[int, str, dict]]:
    """``n`` routes shaped like a gateway's table; route i % 4 == 0 is a param route."""
    routes: list[tuple[int, str, dict]] = []
    for i in range(n - 2 if n >= 1_000 else n):
        kind = i % 4
        if kind == 0:
            routes.append((i, f"/api/v1/svc{i}/users/{{user_id}}", {"methods": ["GET", "HEAD"]}))
        elif kind == 1:
            routes.append((i, f"=/api/v1/svc{i}/health", {}))
        elif kind == 2:
            routes.append((i, f"/api/v2/svc{i}/orders/{{order_id}}/items/", {"hosts": ["*.example.com"]}))
        else:
            routes.append((i, f"/static/svc{i}/", {"hosts": ["cdn.example.com"], "priority": 1}))
    if n >= 1_000:
        routes.append((n - 2, r"~/legacy/(?P<rest>.*)", {}))
        routes.append((n - 1, "/", {}))
    return routes


def build(cls, n: int):
    trie = cls()
    for route_id, path, kwargs in api_routes(n):
        trie.add(route_id, path, **kwargs)
    return trie


def _cls(name: str):
    cls = IMPLS[name]
    if cls is None:
        pytest.skip("compiled trie not available (not built, or LITEMESH_NO_EXTENSIONS set)")
    return cls


def _target(n: int) -> int:
    return (n // 2) // 4 * 4  # a kind-0 (param) route in the middle of the table


@pytest.mark.parametrize("n", SIZES, ids=[f"{n}routes" for n in SIZES])
@pytest.mark.parametrize("name", ["py", "c"])
def test_match_hit(benchmark, name, n):
    trie = build(_cls(name), n)
    target = _target(n)
    query = ("api.example.com", "GET", f"/api/v1/svc{target}/users/42/profile")
    assert trie.match(*query) == (target, {"user_id": "42"})
    benchmark.group = f"match hit, {n} routes"
    benchmark(trie.match, *query)


@pytest.mark.parametrize("n", SIZES, ids=[f"{n}routes" for n in SIZES])
@pytest.mark.parametrize("name", ["py", "c"])
def test_match_miss(benchmark, name, n):
    trie = build(_cls(name), n)
    query = ("www.example.com", "POST", "/api/v1/unknown/path/here")
    assert trie.match(*query) == ((n - 1, None) if n >= 1_000 else None)
    benchmark.group = f"match miss, {n} routes"
    benchmark(trie.match, *query)


@pytest.mark.parametrize("name", ["py", "c"])
def test_add_10k(benchmark, name):
    cls = _cls(name)
    routes = api_routes(10_000)

    def add_all():
        trie = cls()
        for route_id, path, kwargs in routes:
            trie.add(route_id, path, **kwargs)
        return trie

    benchmark.group = "add 10,000 routes"
    trie = benchmark.pedantic(add_all, rounds=5, iterations=1)
    assert len(trie) == 10_000
