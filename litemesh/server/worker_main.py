"""Entry point of a worker process started by the master (``python -m litemesh.server.worker_main``).

The master passes, as inherited file descriptors, one end of a control socketpair and the shared
memory segment.  The worker reads its first config from the control channel, binds its own
SO_REUSEPORT listeners, switches to ``--user``/``--group`` if given (server.user, see
``privileges``), reports ``Ready`` and serves.  If it cannot (a listener address is taken, the
config cannot be applied, the user switch fails) it reports ``StartFailed`` with the reason before
exiting: only that report makes the master give up a start-up; a worker that just dies is
restarted.  Later configs arrive on the same channel and are swapped in between requests; each is
acknowledged with ``Applied``.  If the master goes away (the channel closes) the worker drains and
exits: no orphaned workers.

Signals: SIGTERM/SIGQUIT drain, SIGINT stops at once, SIGUSR1 reopens the log file, SIGHUP is
ignored (reloads go through the master, which validates the config once for everyone).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import struct
import sys

from ..logs import setup_logging
from ..master.control import ApplyConfig, Applied, ControlProtocol, Message, Ready, StartFailed, decode, encode
from .privileges import PrivilegeError, RunAs, drop_privileges, resolve
from .worker import Worker

log = logging.getLogger("litemesh.worker")


def _read_first_config(sock: socket.socket) -> ApplyConfig:
    """Blocking read of the first frame, before the event loop exists."""
    def read_exact(n: int) -> bytes:
        chunks = []
        while n:
            data = sock.recv(min(n, 1 << 20))
            if not data:
                raise SystemExit("litemesh worker: master closed the control channel before sending a config")
            chunks.append(data)
            n -= len(data)
        return b"".join(chunks)

    (length,) = struct.unpack(">I", read_exact(4))
    message = decode(read_exact(length))
    if not isinstance(message, ApplyConfig):
        raise SystemExit(f"litemesh worker: expected a config first, got {type(message).__name__}")
    return message


class WorkerProcess:
    def __init__(self, index: int, control: socket.socket, metrics,  # type: ignore[no-untyped-def]
                 run_as: RunAs | None = None) -> None:
        self.index = index
        self.run_as = run_as
        self.control_sock = control
        self.metrics = metrics
        self.channel: ControlProtocol | None = None
        self.worker: Worker | None = None
        self._applying: asyncio.Task[None] | None = None

    async def run(self, first: ApplyConfig) -> None:
        loop = asyncio.get_running_loop()
        worker = self.worker = Worker(first.config, metrics=self.metrics, generation=first.generation,
                                      route_slots=first.route_slots, target_slots=first.target_slots)
        try:
            await worker.start()
        except Exception as error:  # a listener address in use (ListenerError names it), a config that fails
            reason = str(error) if isinstance(error, OSError) else f"{type(error).__name__}: {error}"
            log.error("worker %d cannot start: %s", self.index, reason, exc_info=not isinstance(error, OSError))
            self._report_start_failure(reason)
            raise SystemExit(3) from None
        if self.run_as is not None:  # listeners bound: serve as server.user from here on
            try:
                drop_privileges(self.run_as)
            except PrivilegeError as error:
                log.error("worker %d: %s", self.index, error)
                self._report_start_failure(str(error))
                raise SystemExit(3) from None
        _, self.channel = await loop.create_unix_connection(
            lambda: ControlProtocol(self._on_message, self._on_master_lost), sock=self.control_sock)
        worker.install_signals()  # this worker has no reload source: SIGHUP does nothing here
        self.channel.send(Ready(os.getpid(), first.generation, worker.ports))
        await worker.serve()

    def _report_start_failure(self, reason: str) -> None:
        # The channel is not wrapped in a transport yet: a plain blocking write, bounded in time.
        try:
            self.control_sock.settimeout(5.0)
            self.control_sock.sendall(encode(StartFailed(os.getpid(), reason)))
        except OSError:
            pass  # the master is gone or stuck; our exit code still tells

    def _on_message(self, message: Message) -> None:
        if isinstance(message, ApplyConfig):
            previous = self._applying
            self._applying = asyncio.get_running_loop().create_task(self._apply(message, previous))

    async def _apply(self, message: ApplyConfig, previous: "asyncio.Task[None] | None") -> None:
        if previous is not None:
            await asyncio.shield(previous)  # generations apply in order
        assert self.worker is not None and self.channel is not None
        try:
            await self.worker.apply(message.config, message.generation, message.route_slots, message.target_slots)
        except Exception as exc:  # e.g. a new listener's port is taken: the old config stays
            log.exception("generation %d not applied", message.generation)
            self.channel.send(Applied(message.generation, f"{type(exc).__name__}: {exc}"))
            return
        log.debug("generation %d live", message.generation)
        self.channel.send(Applied(message.generation))

    def _on_master_lost(self) -> None:
        if self.worker is not None:
            log.warning("master is gone: draining")
            self.worker.request_stop("drain")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="litemesh-worker")
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--shm-fd", type=int, default=-1)
    parser.add_argument("--cpu", type=int, default=-1, help="pin this worker to one CPU")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--log-file", default="")
    parser.add_argument("--user", default="", help="switch to this user once the listeners are bound")
    parser.add_argument("--group", default="", help="with --user: this group instead of the user's own")
    args = parser.parse_args(argv)

    setup_logging(args.log_level, args.log_file)
    try:
        run_as = resolve(args.user, args.group) if args.user else None
    except PrivilegeError as error:
        raise SystemExit(f"litemesh worker {args.index}: {error}") from None
    if args.cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    # The master ends us by signal; until our handlers are installed, SIGINT from a terminal's
    # Ctrl-C must not print a traceback.
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    control = socket.socket(fileno=args.control_fd)
    first = _read_first_config(control)
    control.setblocking(False)
    metrics = None
    if args.shm_fd >= 0:
        from ..shm import Segment

        metrics = Segment.attach(args.shm_fd).worker(args.index)

    import uvloop

    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    process = WorkerProcess(args.index, control, metrics, run_as)
    try:
        loop.run_until_complete(process.run(first))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        # A terminal's Ctrl-C (or `timeout`) signals the whole process group and the master
        # forwards the signal too: the second copy must not kill a worker that is exiting cleanly.
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            signal.signal(signum, signal.SIG_IGN)


if __name__ == "__main__":
    main()
