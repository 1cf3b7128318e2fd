"""Per-worker state shared by every connection: the live snapshot, connections, counters."""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..http.headers import RequestIdFactory
from ..proxy.contracts import ProxyState

if TYPE_CHECKING:
    from ..proxy.pool import PoolRegistry
    from ..proxy.snapshot import Snapshot
    from ..shm import WorkerMetrics
    from .protocol import DownstreamProtocol


class WorkerState(ProxyState):
    """New connections take ``snapshot`` when they open; swapping it is how a reload takes effect."""

    def __init__(self, loop: asyncio.AbstractEventLoop, snapshot: "Snapshot", pools: "PoolRegistry",
                 metrics: "WorkerMetrics | None" = None) -> None:
        # metrics: this worker's shared-memory slot (None: single process, no master)
        super().__init__(loop, snapshot, metrics, RequestIdFactory())
        self.pools = pools
        self.connections: set[DownstreamProtocol] = set()
        self.draining = False
        self._drained: asyncio.Future[None] | None = None

    def connection_closed(self) -> None:
        if self._drained is not None and not self.connections and not self._drained.done():
            self._drained.set_result(None)

    async def drain(self, timeout: float) -> bool:
        """Close idle connections, let busy ones finish; True if all closed within ``timeout``."""
        self.draining = True
        self._drained = self.loop.create_future()
        for conn in list(self.connections):
            conn.shutdown()
        if not self.connections:
            return True
        try:
            await asyncio.wait_for(asyncio.shield(self._drained), timeout)
            return True
        except asyncio.TimeoutError:
            return False
