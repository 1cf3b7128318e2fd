"""A data-plane worker: one uvloop event loop serving every listener of the config.

Signals (DESIGN §1): SIGTERM/SIGQUIT drain gracefully (stop accepting, finish in-flight requests,
close idle keep-alive connections, exit by ``timeouts.drain``); SIGINT stops at once; SIGHUP reloads
the config file in place — a valid config becomes the new snapshot between requests, an invalid
one is reported and the running config stays.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import socket
from typing import Callable

from .._gc import freeze_startup_heap, thaw
from ..config import ConfigError, GatewayConfig
from ..proxy.pool import PoolRegistry
from ..proxy.snapshot import compile_snapshot
from .listener import listening_socket
from .protocol import DownstreamProtocol
from .state import WorkerState

log = logging.getLogger("litemesh.worker")


class Worker:
    def __init__(self, config: GatewayConfig, *, reload: Callable[[], GatewayConfig] | None = None,
                 sockets: list[socket.socket] | None = None) -> None:
        self.config = config
        self._reload_source = reload
        self._sockets = sockets
        self.state: WorkerState | None = None
        self.servers: list[asyncio.base_events.Server] = []
        self._stop: asyncio.Future[str] | None = None
        self.generation = 1

    @property
    def ports(self) -> list[int]:
        return [s.getsockname()[1] for server in self.servers for s in server.sockets]

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._stop = loop.create_future()
        pools = PoolRegistry(loop)
        self.state = WorkerState(loop, compile_snapshot(self.config, pools, self.generation), pools)
        freeze_startup_heap()
        sockets = self._sockets or [listening_socket(l.host, l.port, l.backlog) for l in self.config.listeners]
        state = self.state
        for sock in sockets:
            server = await loop.create_server(lambda: DownstreamProtocol(state), sock=sock, backlog=2048)
            self.servers.append(server)

    def install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig, action in ((signal.SIGTERM, "drain"), (signal.SIGQUIT, "drain"), (signal.SIGINT, "stop")):
            loop.add_signal_handler(sig, self.request_stop, action)
        loop.add_signal_handler(signal.SIGHUP, self.reload)

    def request_stop(self, how: str = "drain") -> None:
        if self._stop is not None and not self._stop.done():
            self._stop.set_result(how)

    def reload(self) -> bool:
        """Load the config again; swap it in if valid.  True on success."""
        if self._reload_source is None or self.state is None:
            return False
        try:
            config = self._reload_source()
        except ConfigError as error:
            log.error("reload rejected, keeping the running config:\n%s", error)
            return False
        self.generation += 1
        thaw()
        self.state.snapshot = compile_snapshot(config, self.state.pools, self.generation)
        self.config = config
        log.info("config generation %d live", self.generation)
        return True

    async def serve(self) -> None:
        """Serve until a stop is requested, then drain or stop."""
        assert self._stop is not None, "start() first"
        how = await self._stop
        for server in self.servers:
            server.close()
        state = self.state
        if how == "drain" and state is not None:
            drained = await state.drain(state.snapshot.timeouts.drain)
            if not drained:
                log.warning("drain timeout: closing %d connections", len(state.connections))
        if state is not None:
            for conn in list(state.connections):
                conn.transport.abort()
            state.pools.close()


def run_worker(config: GatewayConfig, *, reload: Callable[[], GatewayConfig] | None = None,
               sockets: list[socket.socket] | None = None, on_ready: Callable[[Worker], None] | None = None) -> None:
    """Run one worker in this process until it is told to stop."""
    import uvloop

    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    worker = Worker(config, reload=reload, sockets=sockets)
    try:
        loop.run_until_complete(worker.start())
        loop.run_until_complete(_install_and_ready(worker, on_ready))
        loop.run_until_complete(worker.serve())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _install_and_ready(worker: Worker, on_ready: Callable[[Worker], None] | None) -> None:
    worker.install_signals()
    if on_ready is not None:
        on_ready(worker)
