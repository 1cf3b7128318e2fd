"""Services and their targets, with the balancer that picks a target per request."""
from __future__ import annotations

from math import gcd
from typing import Sequence

from .pool import UpstreamPool


class Target:
    __slots__ = ("host", "port", "address", "weight", "host_header", "pool", "inflight_slot")

    def __init__(self, host: str, port: int, weight: int, pool: UpstreamPool, host_header: bytes,
                 inflight_slot: int = -1) -> None:
        self.host = host
        self.port = port
        self.address = f"{host}:{port}"
        self.weight = weight
        self.pool = pool
        self.host_header = host_header  # what goes in Host when the route does not preserve the client's
        self.inflight_slot = inflight_slot  # shared in-flight counter (-1: none assigned)


def smooth_weighted_order(weights: Sequence[int], limit: int = 4096) -> list[int]:
    """One full cycle of nginx-style smooth weighted round robin, as indexes into ``weights``.

    Precomputed at load time so the per-request pick is one list index.  Weights are reduced by
    their gcd; a cycle longer than ``limit`` is cut (the proportions stay approximately right).
    """
    divisor = 0
    for weight in weights:
        divisor = gcd(divisor, weight)
    reduced = [w // divisor for w in weights]
    total = sum(reduced)
    current = [0] * len(reduced)
    order = []
    for _ in range(min(total, limit)):
        for i, weight in enumerate(reduced):
            current[i] += weight
        best = max(range(len(reduced)), key=lambda i: current[i])
        current[best] -= total
        order.append(best)
    return order


class RoundRobin:
    __slots__ = ("_targets", "_order", "_next")

    def __init__(self, targets: Sequence[Target]) -> None:
        self._targets = tuple(targets)
        self._order = [self._targets[i] for i in smooth_weighted_order([t.weight for t in targets])]
        self._next = 0

    def pick(self) -> Target:
        index = self._next
        self._next = index + 1 if index + 1 < len(self._order) else 0
        return self._order[index]


class Service:
    __slots__ = ("name", "targets", "balancer", "connect_timeout", "read_timeout", "write_timeout")

    def __init__(self, name: str, targets: Sequence[Target], connect_timeout: float, read_timeout: float,
                 write_timeout: float) -> None:
        self.name = name
        self.targets = tuple(targets)
        self.balancer = RoundRobin(self.targets)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
