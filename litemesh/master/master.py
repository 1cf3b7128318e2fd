"""The master: supervises N data-plane workers, owns the config, never proxies (DESIGN §1).

Lifecycle.  The master validates the config, creates the shared memory segment, then spawns each
worker as a fresh interpreter (``litemesh.server.worker_main``) with two inherited descriptors: its
end of a control socketpair and the segment.  Spawning rather than forking keeps workers free of
the master's event loop, admin sockets and threads; a restart costs ~0.3 s of interpreter start.
The config travels over the control channel (msgpack), so workers never re-read or re-validate it.

Reload (SIGHUP or ``POST /reload``): the whole new file is loaded and validated here; if anything
is wrong the running generation stays and the error is kept for ``/status``.  A valid config gets
the next generation number and is pushed to every worker, which compiles its own snapshot and swaps
it in between requests; nobody is restarted and no connection is closed.  The reload answer waits
for every worker's acknowledgement, so "applied" means live everywhere.

Settings that shape the processes rather than the data plane (the worker count, CPU pinning, the
pid file, the admin token, the admin address, the log file) are sorted by ``reload_plan``: the
master applies what it can and reports the rest as "needs restart"; none is silently ignored.

Listener addresses.  Before any worker binds an address, the master claims it (``claims``): a
gateway never joins the SO_REUSEPORT group of another process.  A taken address fails the start,
or rejects the reload that adds it, naming the listener and the address.

Supervision.  A worker that exits unexpectedly is reclaimed (its in-flight counters subtracted from
the shared totals) and started again in the same slot: at once if it had run for a while, else
with exponential backoff so a crash loop does not spin.  That holds during start-up too: only a
worker that *reports* it cannot start (``StartFailed``: a listener it cannot bind, a config it
cannot apply) fails the start.  SIGTTIN/SIGTTOU add or retire a worker.  SIGTERM/SIGQUIT drain
(readiness goes false first), SIGINT stops fast, SIGUSR1 reopens log files.
"""
from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping

import msgspec

from .._version import __version__
from ..config import ConfigError, GatewayConfig, load_config_text
from ..logs import reopen_log_files
from ..plural import plural
from ..proxy.snapshot import target_key
from ..server.listener import ListenerError
from ..shm import Segment, SlotNames
from .claims import AddressClaims
from .control import ApplyConfig, Applied, ControlProtocol, Message, Ready, StartFailed
from .cpus import affinity_cpus, worker_count
from .pidfile import PidFileError, default_pid_file, move_pid_file, remove_pid_file, write_pid_file
from .reload_plan import FieldChange, ReloadPlan, plan_reload

log = logging.getLogger("litemesh.master")

#: a worker that ran at least this long before dying is restarted at once
STABLE_AFTER = 10.0
#: restart delays of a crash-looping worker: 0.25 s doubling up to this
MAX_BACKOFF = 30.0
#: how long a reload waits for every worker's acknowledgement
APPLY_TIMEOUT = 30.0
#: how long a worker gets to report Ready after it was spawned
START_TIMEOUT = 60.0


class WorkerHandle:
    """The master's view of one worker slot (the slot index is also its metrics slot)."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.proc: subprocess.Popen[bytes] | None = None
        self.channel: ControlProtocol | None = None
        self.pid = 0
        self.started_at = 0.0
        self.ready = False
        self.generation = 0
        self.ports: list[int] = []
        self.restarts = 0
        self.failures = 0  # consecutive short-lived runs, for the backoff
        self.retiring = False
        self.start_error: str | None = None  # what its StartFailed report said
        self.exit_seen = 0.0  # when the process was first seen gone while its channel was still open
        self.exited: asyncio.Future[int] | None = None
        self.pending_applies: dict[int, asyncio.Future[str | None]] = {}


class Master:
    def __init__(self, config: GatewayConfig, *, config_path: str | None = None, config_text: str = "",
                 workers: int = 1, cpu_affinity: bool = False, pid_file: str | None = None,
                 log_level: str = "info", log_file: str = "", announce: Any = None,
                 fixed: Mapping[str, str] | None = None) -> None:
        """``fixed``: config field path -> the command-line option that set it (``--workers``, ...);
        a reload leaves those fields alone and says so."""
        self.config = config
        self.config_path = config_path
        self.config_hash = hashlib.sha256(config_text.encode()).hexdigest()
        self.desired = workers
        self.cpu_affinity = cpu_affinity
        self.pid_file = pid_file
        self.log_level = log_level
        self.log_file = log_file
        # fixed at start: a worker restarted after a reload that changed server.user matches the others
        self.run_as = (config.server.user, config.server.group)
        self.announce = announce  # callable(master) once every worker is ready
        self.fixed = dict(fixed or {})
        self.needs_restart: list[FieldChange] = []
        self.overridden: list[tuple[FieldChange, str]] = []
        self.start_error: str | None = None
        self._started = False
        self.claims = AddressClaims()
        self.generation = 1
        self.started = time.time()
        self.draining = False
        self.last_reload: dict[str, Any] = {"ok": True, "generation": 1, "at": self.started, "error": None}
        self.reloads = {"ok": 0, "failed": 0}
        self.handles: dict[int, WorkerHandle] = {}
        self.admin_port = 0
        self._stop: asyncio.Future[str] | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._reload_lock: asyncio.Lock | None = None
        self._cpus = affinity_cpus()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.worker_capacity = max(64, 4 * workers)
        self.route_capacity = max(4096, 2 * len(config.routes) + 1)
        self.target_capacity = max(1024, 2 * sum(len(s.targets) for s in config.services) + 1)
        self.segment: Segment | None = None
        self.route_names: SlotNames | None = None
        self.target_names: SlotNames | None = None
        self._admin: Any = None

    # -- entry point -------------------------------------------------------------------------
    def run(self) -> int:
        import uvloop

        loop = uvloop.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            return loop.run_until_complete(self._main())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self) -> int:
        loop = self._loop = asyncio.get_running_loop()
        self._stop = loop.create_future()
        self._reload_lock = asyncio.Lock()
        try:
            # before anything else: nothing may be served from an address another process listens on
            self.config = self.claims.claim(self.config)
        except ListenerError as error:
            self.start_error = str(error)
            log.error("cannot start: %s", error)
            return 1
        try:
            return await self._run_claimed()
        finally:
            self.claims.close()

    async def _run_claimed(self) -> int:
        self.segment = Segment.create(workers=self.worker_capacity, routes=self.route_capacity,
                                      targets=self.target_capacity)
        # slots keep their meaning across reloads; a reused route slot is zeroed first
        self.route_names = SlotNames(self.route_capacity, reset=self.segment.clear_route)
        self.target_names = SlotNames(self.target_capacity)
        self._assign_slots(self.config)
        try:
            try:
                await self._start_admin()
            except OSError as error:
                admin = self.config.admin
                self.start_error = (f"cannot listen for the admin API on {admin.host}:{admin.port}: "
                                    f"{error.strerror or error} (set admin.address, or admin.enabled: false)")
                log.error("%s", self.start_error)
                return 1
            if self.pid_file:
                write_pid_file(self.pid_file)
            self._install_signals()
            for index in range(self.desired):
                self._spawn(index)
            if not await self._wait_ready(START_TIMEOUT):
                await self._shutdown("stop")
                return 1
            self._started = True
            if self.announce is not None:
                self.announce(self)
            how = await self._stop
            await self._shutdown(how)
            return 0
        finally:
            if self._reaper is not None:
                self._reaper.cancel()
            if self.pid_file:
                remove_pid_file(self.pid_file)
            if self._admin is not None:
                await self._admin.close()
            self.segment.close()

    async def _start_admin(self) -> None:
        admin = self.config.admin
        if not admin.enabled:
            return
        from ..admin.server import AdminServer
        from .admin_app import MasterAdminApp

        self._admin = AdminServer(MasterAdminApp(self), token=admin.token)
        self.admin_port = await self._admin.start(admin.host, admin.port)

    def _install_signals(self) -> None:
        loop = self._loop
        assert loop is not None
        loop.add_signal_handler(signal.SIGTERM, self.request_stop, "drain")
        loop.add_signal_handler(signal.SIGQUIT, self.request_stop, "drain")
        loop.add_signal_handler(signal.SIGINT, self.request_stop, "stop")
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload()))
        loop.add_signal_handler(signal.SIGUSR1, self._reopen_logs)
        loop.add_signal_handler(signal.SIGTTIN, self.add_worker)
        loop.add_signal_handler(signal.SIGTTOU, self.remove_worker)
        # uvloop keeps SIGCHLD for itself: a worker's exit is seen when its control channel closes,
        # and a slow poll catches the rare exit that leaves the channel open (it never should).
        self._reaper = loop.create_task(self._poll_children())

    async def _poll_children(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self._reap()

    def request_stop(self, how: str = "drain") -> None:
        if self._stop is not None and not self._stop.done():
            self.draining = True  # readiness goes false before anything else happens
            self._stop.set_result(how)

    # -- slots in shared memory ---------------------------------------------------------------
    def _assign_slots(self, config: GatewayConfig) -> tuple[dict[str, int], dict[str, int]]:
        assert self.route_names is not None and self.target_names is not None
        routes = self.route_names.assign([route.name for route in config.routes])
        keys = [target_key(s.name, t.host, t.port) for s in config.services for t in s.targets]
        targets = self.target_names.assign(keys)
        for kind, overflow in (("route", routes.overflow), ("target", targets.overflow)):
            if overflow:
                log.warning("%s beyond the metrics capacity share slot 0 (restart to grow it): %s",
                            plural(len(overflow), kind), ", ".join(overflow[:5]))
        self._slots = (dict(routes.slots), dict(targets.slots))
        return self._slots

    def _apply_message(self) -> ApplyConfig:
        routes, targets = self._slots
        return ApplyConfig(self.generation, self.config, routes, targets)

    # -- workers -----------------------------------------------------------------------------
    def _spawn(self, index: int) -> WorkerHandle:
        assert self._loop is not None and self.segment is not None
        handle = self.handles.get(index) or WorkerHandle(index)
        self.handles[index] = handle
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        cmd = [sys.executable, "-m", "litemesh.server.worker_main", "--index", str(index),
               "--control-fd", str(child.fileno()), "--shm-fd", str(self.segment.fd),
               "--log-level", self.log_level]
        if self.log_file:
            cmd += ["--log-file", self.log_file]
        if self.run_as[0]:
            cmd += ["--user", self.run_as[0], "--group", self.run_as[1]]
        if self.cpu_affinity:
            cmd += ["--cpu", str(self._cpus[index % len(self._cpus)])]
        try:
            handle.proc = subprocess.Popen(cmd, pass_fds=(child.fileno(), self.segment.fd), close_fds=True)
        finally:
            child.close()
        handle.pid = handle.proc.pid
        handle.started_at = time.monotonic()
        handle.ready = False
        handle.generation = 0
        handle.start_error = None
        handle.exit_seen = 0.0
        handle.exited = self._loop.create_future()
        handle.pending_applies = {}
        channel = ControlProtocol(functools.partial(self._on_message, handle),
                                  functools.partial(self._on_channel_lost, handle))
        handle.channel = channel
        parent.setblocking(False)
        self._loop.create_task(self._connect(handle, parent, channel))
        log.info("worker %d started (pid %d)", index, handle.pid)
        return handle

    async def _connect(self, handle: WorkerHandle, sock: socket.socket, channel: ControlProtocol) -> None:
        assert self._loop is not None
        await self._loop.create_unix_connection(lambda: channel, sock=sock)
        channel.send(self._apply_message())

    def _on_message(self, handle: WorkerHandle, message: Message) -> None:
        if isinstance(message, Ready):
            handle.ready = True
            handle.generation = message.generation
            handle.ports = list(message.ports)
            for generation, waiter in list(handle.pending_applies.items()):
                if generation <= message.generation and not waiter.done():
                    waiter.set_result(None)  # started on that generation (or a newer one) directly
                    del handle.pending_applies[generation]
            log.debug("worker %d ready (pid %d, generation %d)", handle.index, message.pid, message.generation)
        elif isinstance(message, Applied):
            if message.error is None:
                handle.generation = max(handle.generation, message.generation)
            waiter = handle.pending_applies.pop(message.generation, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(message.error)
        elif isinstance(message, StartFailed):
            handle.start_error = message.error
            log.error("worker %d (pid %d) cannot start: %s", handle.index, message.pid, message.error)

    def _on_channel_lost(self, handle: WorkerHandle, polls: int = 0) -> None:
        """The worker's end closed: it is exiting.  Poll briefly until the process is gone, then
        reap (after a second, the slow poll of _poll_children takes over)."""
        proc = handle.proc
        if proc is None:
            return
        assert self._loop is not None
        if proc.poll() is None:
            if polls < 100:
                self._loop.call_later(0.01, self._on_channel_lost, handle, polls + 1)
            return
        self._reap()

    def _reap(self) -> None:
        """SIGCHLD or a closed control channel: collect exited workers, restart those we still want."""
        for handle in list(self.handles.values()):
            proc = handle.proc
            if proc is None or proc.poll() is None:
                continue
            if handle.channel is not None and handle.channel.transport is not None:
                # Gone, but its channel is still open: its last words (a StartFailed report) may be
                # unread.  The channel's close reaps it (_on_channel_lost); this poll only after a while.
                now = time.monotonic()
                handle.exit_seen = handle.exit_seen or now
                if now - handle.exit_seen < 1.0:
                    continue
            code = proc.returncode
            handle.proc = None
            handle.ready = False
            if handle.channel is not None and handle.channel.transport is not None:
                handle.channel.transport.close()
            handle.channel = None
            for waiter in handle.pending_applies.values():
                if not waiter.done():
                    waiter.set_result("worker exited")
            handle.pending_applies.clear()
            if handle.exited is not None and not handle.exited.done():
                handle.exited.set_result(code)
            if self.segment is not None:
                self.segment.reclaim_worker(handle.index)
            if self.draining or handle.retiring or (handle.start_error and not self._started):
                log.info("worker %d (pid %d) exited with %s", handle.index, handle.pid, code)
                if handle.retiring:
                    del self.handles[handle.index]
                continue  # (a start-up that a worker reported impossible is stopping: no restart)
            uptime = time.monotonic() - handle.started_at
            handle.failures = 0 if uptime >= STABLE_AFTER else handle.failures + 1
            delay = 0.0 if handle.failures == 0 else min(MAX_BACKOFF, 0.25 * 2 ** (handle.failures - 1))
            handle.restarts += 1
            log.error("worker %d (pid %d) died with %s after %.1f s; restarting in %.2f s",
                      handle.index, handle.pid, code, uptime, delay)
            assert self._loop is not None
            self._loop.call_later(delay, self._restart, handle.index)

    def _restart(self, index: int) -> None:
        handle = self.handles.get(index)
        if handle is None or handle.proc is not None or self.draining or handle.retiring:
            return
        self._spawn(index)

    def add_worker(self) -> None:
        """SIGTTIN: one more worker, in the lowest free slot."""
        if self.draining:
            return
        if len(self._live_slots()) >= self.worker_capacity:
            log.warning("SIGTTIN ignored: all %s in use", plural(self.worker_capacity, "worker slot"))
            return
        self._scale_to(len(self._live_slots()) + 1)

    def remove_worker(self) -> None:
        """SIGTTOU: drain and retire the highest slot (never the last worker)."""
        live = self._live_slots()
        if self.draining or len(live) <= 1:
            return
        self._scale_to(len(live) - 1)

    def _live_slots(self) -> list[int]:
        return sorted(i for i, h in self.handles.items() if not h.retiring)

    def _scale_to(self, count: int) -> list[WorkerHandle]:
        """Spawn workers in the lowest free slots, or drain and retire the highest ones, until
        ``count`` (1 to ``worker_capacity``) serve; returns the spawned ones."""
        live = self._live_slots()
        spawned = []
        while len(live) < count:
            free = next(i for i in range(self.worker_capacity) if i not in self.handles)
            spawned.append(self._spawn(free))
            live.append(free)
        for index in live[count:]:
            handle = self.handles[index]
            handle.retiring = True
            if handle.proc is not None:
                handle.proc.send_signal(signal.SIGTERM)
            else:
                del self.handles[handle.index]
        self.desired = count
        return spawned

    async def _wait_ready(self, timeout: float) -> bool:
        """Start-up: wait until every worker is ready.  A worker that *reports* that it cannot start
        (StartFailed: a listener it cannot bind, a config it cannot apply) fails the start; one that
        dies without a report (killed, crashed) is restarted with backoff, as at any other time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._stop is not None and self._stop.done():
                return True
            if self.ready():
                return True
            failed = next((h for h in self.handles.values() if h.start_error), None)
            if failed is not None:
                self.start_error = f"worker {failed.index}: {failed.start_error}"
                log.error("cannot start: %s", self.start_error)
                return False
            await asyncio.sleep(0.02)
        self.start_error = f"workers did not become ready within {timeout:.0f} s"
        log.error("%s", self.start_error)
        return False

    def ready(self) -> bool:
        live = [h for h in self.handles.values() if not h.retiring]
        return not self.draining and len(live) >= self.desired and all(h.ready for h in live)

    # -- reload ------------------------------------------------------------------------------
    async def reload(self) -> tuple[bool, dict[str, Any]]:
        """Load, validate and roll out the config file; the running config stays on any error."""
        assert self._reload_lock is not None
        async with self._reload_lock:
            if self.config_path is None:
                return self._reload_failed("no config file to reload (started with --listen/--upstream)")
            if self.draining:
                return self._reload_failed("draining")
            begun = time.monotonic()
            try:
                text = Path(self.config_path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                return self._reload_failed(f"{self.config_path}: cannot read configuration: {exc}")
            try:
                loaded = load_config_text(text, self.config_path)
            except ConfigError as error:
                return self._reload_failed(str(error))
            plan = plan_reload(self.config, loaded, self._overrides())
            try:
                config = self.claims.claim(plan.config, self.config)  # the listener addresses it adds
            except ListenerError as error:
                return self._reload_failed(str(error))
            started = time.monotonic()
            self.generation += 1
            self.config = config
            self.config_hash = hashlib.sha256(text.encode()).hexdigest()
            self._assign_slots(config)
            errors = await self._roll_out()
            if not errors:
                self.claims.keep_only(config)  # every worker closed the listeners it drops
            errors += await self._apply_master_fields(plan)
            self.needs_restart, self.overridden = plan.restart, plan.overridden
            for change in plan.restart:
                shown = change.as_json()
                log.warning("reload: %s is %r in the file but %r runs: needs a restart", change.field,
                            shown["file"], shown["running"])
            for change, option in plan.overridden:
                log.warning("reload: %s is %r in the file; %s on the command line keeps %r", change.field,
                            change.as_json()["file"], option, change.running)
            elapsed = time.monotonic() - started
            result = {"ok": not errors, "generation": self.generation, "at": time.time(),
                      "error": "; ".join(errors) if errors else None,
                      "load_ms": round((started - begun) * 1000, 1),  # read + validate here
                      "apply_ms": round(elapsed * 1000, 1),  # until every worker acknowledged
                      "routes": len(config.routes),
                      "applied": [change.as_json() for change in plan.master],
                      "needs_restart": [change.as_json() for change in plan.restart],
                      "overridden": [change.as_json(option=option) for change, option in plan.overridden]}
            self.last_reload = result
            self.reloads["ok" if not errors else "failed"] += 1
            if errors:
                log.error("generation %d: not applied everywhere: %s", self.generation, result["error"])
            else:
                live = sum(1 for h in self.handles.values() if h.proc is not None)
                log.info("generation %d live in %s after %.0f ms", self.generation, plural(live, "worker"),
                         elapsed * 1000)
            return not errors, result

    def _overrides(self) -> dict[str, tuple[str, Any]]:
        """Fields the command line fixed: option and the value in force."""
        running = {"server.workers": self.desired, "server.cpu_affinity": self.cpu_affinity,
                   "server.pid_file": self.pid_file, "server.log_file": self.log_file}
        return {field: (option, running.get(field)) for field, option in self.fixed.items()}

    async def _apply_master_fields(self, plan: ReloadPlan) -> list[str]:
        """Apply the changed fields that the master itself carries out; returns errors.  A field
        that could not be applied goes back to its running value (and into ``plan``'s lists)."""
        errors: list[str] = []
        change = plan.changed("server.workers")
        if change is not None:
            count = worker_count(change.file)
            if count > self.worker_capacity:  # the shared memory segment has this many worker slots
                plan.master.remove(change)
                plan.restart.append(change._replace(running=self.desired))
                self._keep_field("server", "workers", change.running)
            else:
                errors += await self._await_started(self._scale_to(count))
        change = plan.changed("server.cpu_affinity")
        if change is not None:
            self.cpu_affinity = bool(change.file)
            self._pin_workers()
        change = plan.changed("server.pid_file")
        if change is not None and self.pid_file:
            new = default_pid_file(self.config, self.config_path)
            try:
                move_pid_file(self.pid_file, new)
                log.info("pid file moved from %s to %s", self.pid_file, new)
                self.pid_file = new
            except PidFileError as error:
                errors.append(f"server.pid_file: {error} (the pid file stays {self.pid_file})")
                plan.master.remove(change)
                self._keep_field("server", "pid_file", change.running)
        change = plan.changed("admin.token")
        if change is not None and self._admin is not None:
            self._admin.set_token(change.file)
        return errors

    def _keep_field(self, section: str, field: str, value: Any) -> None:
        spec = msgspec.structs.replace(getattr(self.config, section), **{field: value})
        self.config = msgspec.structs.replace(self.config, **{section: spec})

    async def _await_started(self, handles: list[WorkerHandle]) -> list[str]:
        """Workers a reload added count as applied once they are ready (on the current generation)."""
        def settled(h: WorkerHandle) -> bool:
            return h.ready or h.retiring or h.start_error is not None

        deadline = time.monotonic() + APPLY_TIMEOUT
        while time.monotonic() < deadline and not all(settled(h) for h in handles):
            await asyncio.sleep(0.02)
        return [f"worker {h.index}: {h.start_error or f'not ready within {APPLY_TIMEOUT:.0f} s'}"
                for h in handles if not (h.ready or h.retiring)]

    def _pin_workers(self) -> None:
        """Pin each running worker to its CPU, or let it run anywhere the master may."""
        for handle in self.handles.values():
            if handle.proc is None:
                continue
            cpus = {self._cpus[handle.index % len(self._cpus)]} if self.cpu_affinity else set(self._cpus)
            try:
                os.sched_setaffinity(handle.pid, cpus)
            except OSError as error:  # exiting meanwhile
                log.debug("worker %d: cannot set its CPU affinity: %s", handle.index, error)

    def _reload_failed(self, error: str) -> tuple[bool, dict[str, Any]]:
        log.error("reload rejected, generation %d keeps serving:\n%s", self.generation, error)
        self.reloads["failed"] += 1
        self.last_reload = {"ok": False, "generation": self.generation, "at": time.time(), "error": error}
        return False, dict(self.last_reload)

    async def _roll_out(self) -> list[str]:
        assert self._loop is not None
        message = self._apply_message()
        waiters = []
        for handle in self.handles.values():
            if handle.proc is None or handle.channel is None or handle.channel.transport is None:
                continue  # a worker still connecting gets the current config as its first message
            waiter: asyncio.Future[str | None] = self._loop.create_future()
            handle.pending_applies[message.generation] = waiter
            handle.channel.send(message)
            waiters.append((handle, waiter))
        errors = []
        for handle, waiter in waiters:
            try:
                error = await asyncio.wait_for(asyncio.shield(waiter), APPLY_TIMEOUT)
            except asyncio.TimeoutError:
                error = f"no answer within {APPLY_TIMEOUT:.0f} s"
            if error is not None and error != "worker exited":
                errors.append(f"worker {handle.index}: {error}")
        return errors

    # -- shutdown ----------------------------------------------------------------------------
    async def _shutdown(self, how: str) -> None:
        self.draining = True
        signum = signal.SIGTERM if how == "drain" else signal.SIGINT
        grace = (self.config.timeouts.drain if how == "drain" else 0.0) + 5.0
        for handle in self.handles.values():
            if handle.proc is not None:
                try:
                    handle.proc.send_signal(signum)
                except ProcessLookupError:
                    pass
        waiting = [h.exited for h in self.handles.values() if h.proc is not None and h.exited is not None]
        if waiting:
            done, pending = await asyncio.wait(waiting, timeout=grace)
            if pending:
                for handle in self.handles.values():
                    if handle.proc is not None:
                        log.warning("worker %d (pid %d) did not exit in time: killing it", handle.index, handle.pid)
                        handle.proc.kill()
                await asyncio.wait(pending, timeout=5.0)

    def _reopen_logs(self) -> None:
        reopen_log_files()
        for handle in self.handles.values():
            if handle.proc is not None:
                handle.proc.send_signal(signal.SIGUSR1)

    # -- introspection (admin API) ------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        assert self.segment is not None
        workers = []
        for index in sorted(self.handles):
            handle = self.handles[index]
            stats = self.segment.worker_stats(index)
            workers.append({
                "index": index, "pid": handle.pid if handle.proc is not None else None, "ready": handle.ready,
                "generation": handle.generation, "restarts": handle.restarts, "retiring": handle.retiring,
                "uptime_s": round(time.monotonic() - handle.started_at, 3) if handle.proc is not None else 0,
                "rss_bytes": _rss(handle.pid) if handle.proc is not None else 0,
                "connections": stats.active_connections, "requests": stats.requests_total,
            })
        return {
            "version": __version__, "pid": os.getpid(), "uptime_s": round(time.time() - self.started, 3),
            "ready": self.ready(), "draining": self.draining,
            "config": {"path": self.config_path, "generation": self.generation, "sha256": self.config_hash,
                       "routes": len(self.config.routes), "services": len(self.config.services)},
            "last_reload": self.last_reload, "reloads": dict(self.reloads),
            # settings the file changes but only a restart applies (running value kept), and those
            # a command-line option fixes
            "needs_restart": [change.as_json() for change in self.needs_restart],
            "overridden": [change.as_json(option=option) for change, option in self.overridden],
            "workers_desired": self.desired, "workers": workers,
            "listeners": [f"{l.host}:{l.port}" for l in self.config.listeners],
        }

    def metrics_text(self) -> str:
        from ..shm.prometheus import render

        assert self.segment is not None
        extra = {
            "litemesh_config_generation": float(self.generation),
            "litemesh_workers": float(sum(1 for h in self.handles.values() if h.proc is not None)),
            "litemesh_worker_restarts": float(sum(h.restarts for h in self.handles.values())),
            "litemesh_config_reloads_ok": float(self.reloads["ok"]),
            "litemesh_config_reloads_failed": float(self.reloads["failed"]),
            "litemesh_last_reload_ok": 1.0 if self.last_reload.get("ok") else 0.0,
        }
        assert self.route_names is not None and self.target_names is not None
        return render(self.segment, self.route_names.by_slot(), self.target_names.by_slot(), extra)


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
