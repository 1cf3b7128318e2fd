"""The request mixes of bench/locustfile.py, as plain data (no locust import).

The locustfile draws every request it makes from one of these mixes, and
tests/functional/test_bench_locust.py sends every call of each mix to a real gateway in front
of the upstreams the mix is meant for, checking the status the locustfile counts as success.

Mixes:
  demo    `make run` / `litemesh demo`: litemesh/config/example.yaml in front of the demo upstreams
          (litemesh/demo/upstreams.py), so only the routes that config has
  origin  a gateway whose catch-all route goes to bench/origin.py, e.g.
          `litemesh run --listen 127.0.0.1:8080 --upstream 127.0.0.1:9000` + `bench/origin.py --port 9000`

LOCUST_USER_ID_MAX (default 100000) bounds the ids put into paths and bodies.
"""
from __future__ import annotations

import json
import os
import random
import re
from dataclasses import dataclass

__all__ = ["Call", "Mix", "MIXES", "ID_MAX"]

ID_MAX = int(os.environ.get("LOCUST_USER_ID_MAX", "100000"))
_ID = re.compile(r"\{n\}")


@dataclass(frozen=True)
class Call:
    """One kind of request: ``{n}`` in ``path`` becomes a random id; ``status`` is the only answer
    that counts as a success (redirects are not followed)."""

    name: str         # what locust reports it as
    weight: int       # relative frequency within its mix
    method: str
    path: str
    status: int
    json_body: bool = False

    def render(self, rng: random.Random) -> tuple[str, bytes | None, dict[str, str]]:
        """(path, body or None, headers) of one request of this kind."""
        path = _ID.sub(lambda _: str(rng.randint(1, ID_MAX)), self.path)
        if not self.json_body:
            return path, None, {}
        order = {
            "customer_id": rng.randint(1, ID_MAX),
            "items": [{"sku": f"SKU-{rng.randint(1000, 9999)}", "qty": rng.randint(1, 5)}
                      for _ in range(rng.randint(1, 4))],
            "currency": "EUR",
            "note": "bench order",
        }
        return path, json.dumps(order).encode(), {"Content-Type": "application/json"}


class Mix:
    """A weighted choice among calls."""

    def __init__(self, *calls: Call) -> None:
        self.calls = calls
        self._weights = [call.weight for call in calls]

    def pick(self, rng: random.Random) -> Call:
        return rng.choices(self.calls, self._weights)[0]


MIXES: dict[str, Mix] = {
    "demo": Mix(
        Call("GET /api/users (strip_prefix, round robin)", 25, "GET", "/api/users", 200),
        Call("GET /api/users/{id} (rewrite)", 20, "GET", "/api/users/{n}", 200),
        Call("GET /api/users/{id}/orders", 10, "GET", "/api/users/{n}/orders", 200),
        Call("POST /api/orders (json)", 15, "POST", "/api/orders", 200, json_body=True),
        Call("GET /api/orders/{id}", 10, "GET", "/api/orders/{n}", 200),
        Call("GET /healthz (gateway)", 10, "GET", "/healthz", 200),
        Call("GET /internal/{n} (403)", 4, "GET", "/internal/{n}", 403),
        Call("GET /docs/v1 (301)", 3, "GET", "/docs/v1", 301),
        Call("GET /no-such-route/{n} (404)", 3, "GET", "/no-such-route/{n}", 404),
    ),
    "origin": Mix(
        Call("GET / (small)", 60, "GET", "/", 200),
        Call("GET /api/v1/users/{id}/orders/{order_id}", 20, "GET", "/api/v1/users/{n}/orders/{n}", 200),
        Call("POST /api/v1/orders (json)", 10, "POST", "/api/v1/orders", 200, json_body=True),
        Call("GET /10k", 5, "GET", "/10k", 200),
        Call("GET /no-such-route/{n} (404)", 5, "GET", "/no-such-route/{n}", 404),
    ),
}
