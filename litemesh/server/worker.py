"""A data-plane worker: one uvloop event loop serving every listener of the config.

Signals (DESIGN §1): SIGTERM/SIGQUIT drain gracefully (stop accepting, finish in-flight requests,
close idle keep-alive connections, exit by ``timeouts.drain``); SIGINT stops at once; SIGHUP reloads
the config file in place — a valid config becomes the new snapshot between requests, an invalid
one is reported and the running config stays.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from typing import TYPE_CHECKING, Callable, Mapping

from .._gc import freeze_new_snapshot, freeze_startup_heap
from ..config import ConfigError, GatewayConfig
from ..logs import reopen_log_files
from ..plural import plural
from ..proxy.pool import PoolRegistry
from ..proxy.snapshot import compile_snapshot, compile_snapshot_sliced
from .listener import ListenerError, listening_socket
from .privileges import RunAs, drop_privileges, privileged_port_hint
from .protocol import DownstreamProtocol
from .state import WorkerState

if TYPE_CHECKING:
    from ..shm import WorkerMetrics

log = logging.getLogger("litemesh.worker")


class Worker:
    def __init__(self, config: GatewayConfig, *, reload: Callable[[], GatewayConfig] | None = None,
                 sockets: list[socket.socket] | None = None, metrics: "WorkerMetrics | None" = None,
                 generation: int = 1, route_slots: Mapping[str, int] | None = None,
                 target_slots: Mapping[str, int] | None = None) -> None:
        self.config = config
        self._reload_source = reload
        self._sockets = sockets
        self._metrics = metrics
        self._slots = (route_slots, target_slots)
        self.state: WorkerState | None = None
        self.servers: list[asyncio.base_events.Server] = []
        self._servers_by_address: dict[tuple[str, int], list[asyncio.base_events.Server]] = {}
        self._backlogs: dict[tuple[str, int], int] = {}
        self._stop: asyncio.Future[str] | None = None
        self.generation = generation

    @property
    def ports(self) -> list[int]:
        return [s.getsockname()[1] for server in self.servers for s in server.sockets]

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._stop = loop.create_future()
        pools = PoolRegistry(loop)
        route_slots, target_slots = self._slots
        snapshot = compile_snapshot(self.config, pools, self.generation, route_slots=route_slots,
                                    target_slots=target_slots)
        self.state = WorkerState(loop, snapshot, pools, self._metrics)
        freeze_startup_heap()
        if self._sockets:
            for sock in self._sockets:
                await self._serve_socket(sock, sock.getsockname()[:2], 2048)
        else:
            for listener in self.config.listeners:
                await self._listen(listener.name, listener.host, listener.port, listener.backlog)

    async def _listen(self, name: str, host: str, port: int, backlog: int) -> None:
        """Raises ListenerError (an OSError naming the listener and its address)."""
        try:
            sock = listening_socket(host, port, backlog)
        except PermissionError as error:  # a privileged port, after the switch to server.user
            raise ListenerError(name, host, port, error, privileged_port_hint(port)) from None
        except OSError as error:
            raise ListenerError(name, host, port, error) from None
        await self._serve_socket(sock, (host, port), backlog)
        self._backlogs[(host, port)] = backlog

    async def _serve_socket(self, sock: socket.socket, address: tuple[str, int], backlog: int) -> None:
        state = self.state
        # create_server calls listen() again with this backlog
        server = await asyncio.get_running_loop().create_server(lambda: DownstreamProtocol(state), sock=sock,
                                                                backlog=backlog)
        self.servers.append(server)
        self._servers_by_address.setdefault(address, []).append(server)

    def install_signals(self) -> None:
        """SIGTERM/SIGQUIT drain, SIGINT stops, SIGUSR1 reopens log files, SIGHUP reloads (a no-op
        under a master, which validates and pushes configs itself)."""
        loop = asyncio.get_running_loop()
        for sig, action in ((signal.SIGTERM, "drain"), (signal.SIGQUIT, "drain"), (signal.SIGINT, "stop")):
            loop.add_signal_handler(sig, self.request_stop, action)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        loop.add_signal_handler(signal.SIGUSR1, reopen_log_files)

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
        self.state.snapshot = compile_snapshot(config, self.state.pools, self.generation)
        freeze_new_snapshot()
        self.config = config
        log.info("config generation %d live", self.generation)
        return True

    async def apply(self, config: GatewayConfig, generation: int, route_slots: Mapping[str, int],
                    target_slots: Mapping[str, int]) -> None:
        """Serve ``config`` from the next request on (the master validated it).  Connections stay
        open; requests in flight finish on the snapshot they started with.  Listeners that the new
        config adds are opened and those it drops are closed (their connections are kept)."""
        assert self.state is not None
        snapshot = await compile_snapshot_sliced(config, self.state.pools, generation, route_slots=route_slots,
                                                 target_slots=target_slots)
        wanted = {(l.host, l.port): l for l in config.listeners}
        added = []
        try:
            for address, listener in wanted.items():
                if address not in self._servers_by_address:
                    await self._listen(listener.name, listener.host, listener.port, listener.backlog)
                    added.append(address)
        except OSError:
            self._close_listeners(added)  # all or nothing: the running generation keeps its listeners
            raise
        self._close_listeners([a for a in self._servers_by_address if a not in wanted])
        for address, listener in wanted.items():
            if self._backlogs.get(address) != listener.backlog:
                self._set_backlog(address, listener.backlog)
        self.state.snapshot = snapshot
        freeze_new_snapshot()
        self.config = config
        self.generation = generation

    def _close_listeners(self, addresses: list[tuple[str, int]]) -> None:
        """Stop accepting on ``addresses``; their connections stay open."""
        for address in addresses:
            self._backlogs.pop(address, None)
            for server in self._servers_by_address.pop(address, []):
                server.close()
                self.servers.remove(server)

    def _set_backlog(self, address: tuple[str, int], backlog: int) -> None:
        # listen() again on a listening socket only changes its backlog (Linux); through a dup,
        # since the event loop's socket objects do not expose listen().
        try:
            for server in self._servers_by_address.get(address, []):
                for sock in server.sockets:
                    with socket.socket(fileno=os.dup(sock.fileno())) as dup:
                        dup.listen(backlog)
        except OSError as error:  # the old backlog stays; nothing else depends on it
            log.warning("cannot change the backlog of %s:%d to %d: %s", *address, backlog, error)
            return
        self._backlogs[address] = backlog

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
                log.warning("drain timeout: closing %s", plural(len(state.connections), "connection"))
        if state is not None:
            for conn in list(state.connections):
                conn.transport.abort()
            state.pools.close()


def run_worker(config: GatewayConfig, *, reload: Callable[[], GatewayConfig] | None = None,
               sockets: list[socket.socket] | None = None, on_ready: Callable[[Worker], None] | None = None,
               run_as: RunAs | None = None) -> None:
    """Run one worker in this process until it is told to stop; with ``run_as``, as that user once
    the listeners are bound (``PrivilegeError`` if the switch fails)."""
    import uvloop

    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    worker = Worker(config, reload=reload, sockets=sockets)
    try:
        loop.run_until_complete(worker.start())
        if run_as is not None:
            drop_privileges(run_as)
        loop.run_until_complete(_install_and_ready(worker, on_ready))
        loop.run_until_complete(worker.serve())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _install_and_ready(worker: Worker, on_ready: Callable[[Worker], None] | None) -> None:
    worker.install_signals()
    if on_ready is not None:
        on_ready(worker)
