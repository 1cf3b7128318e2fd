"""Operator defects of the master (issue 7, points 8, 9, 10, 15), over real processes and sockets.

Some gateways here are started the way an operator starts them (``litemesh run -c FILE`` without
the fixture's ``--workers``/``--pid-file``), with ``$TMPDIR`` private to the test so default pid
files never meet another test's.  Foreign listeners are plain sockets of this test process.
"""
from __future__ import annotations

import errno
import functools
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.support.origins import HttpOrigin, free_port, pattern_bytes
from tests.support.rawclient import request

from .conftest import _LIVE, REPO_ROOT, Gateway, env_for_gateway, route, service
from .helpers import wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def origin() -> Iterator[HttpOrigin]:
    with HttpOrigin() as srv:
        yield srv


def _config(origin: HttpOrigin, **top: Any) -> dict[str, Any]:
    return {"services": [service("main", origin)], "routes": [route("main", ["/bytes"], "main")], **top}


class Operated(Gateway):
    """``litemesh run -c FILE *args`` with nothing else on the command line; ``$TMPDIR`` is
    ``directory/tmp``.  ``wait``: block until the admin API reports ready."""

    def __init__(self, config: dict[str, Any], directory: Path, name: str, *, args: tuple[str, ...] = (),
                 wait: bool = True, port: int | None = None) -> None:
        self.port = port or free_port()
        self.admin_port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.directory = directory
        self.tmpdir = directory / "tmp"
        self.tmpdir.mkdir(exist_ok=True)
        self.config_path = directory / f"{name}.yaml"
        self.stderr_path = directory / f"{name}.stderr"
        self.pid_file = self.tmpdir / "unused"  # Gateway's attribute; the master picks its own here
        self._text_config = False
        self._own_admin = "admin" in config
        self.write_config(config)
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "litemesh", "run", "-c", str(self.config_path), *args],
                                     cwd=REPO_ROOT, env=self.env(), stdin=subprocess.DEVNULL,
                                     stdout=self._stderr, stderr=self._stderr)
        _LIVE.append(self)
        if wait:
            try:
                self._wait_ready(30.0)
            except BaseException:
                self.stop()
                raise

    def env(self) -> dict[str, str]:
        return env_for_gateway(TMPDIR=str(self.tmpdir))

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``litemesh *args`` as the operator types it, beside this gateway."""
        return subprocess.run([sys.executable, "-m", "litemesh", *args], cwd=REPO_ROOT, env=self.env(),
                              capture_output=True, text=True, timeout=60)

    def exit_code(self, timeout: float = 30.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"gateway still running after {timeout} s:\n{self.stderr()[-3000:]}") from None


@pytest.fixture
def operated(tmp_path: Path) -> Iterator:
    started: list[Operated] = []

    def start(config: dict[str, Any], **options: Any) -> Operated:
        gw = Operated(config, tmp_path, f"op{len(started)}", **options)
        started.append(gw)
        return gw

    try:
        yield start
    finally:
        for gw in started:
            gw.stop()


_wait = functools.partial(wait_until, timeout=30.0)


def _status(gw: Gateway, **kwargs: Any) -> dict[str, Any]:
    resp = gw.admin("GET", "/status", timeout=10, **kwargs)
    assert resp.status == 200, resp.body
    return resp.json()


def _reload(gw: Gateway, **kwargs: Any) -> dict[str, Any]:
    resp = gw.admin("POST", "/reload", timeout=60, **kwargs)
    return {"status": resp.status, **resp.json()}


def _serves(port: int, count: int = 20) -> None:
    """``count`` requests, each on a new connection (the kernel picks the listener), all answered."""
    for _ in range(count):
        resp = request(port, "GET", "/bytes/16", timeout=10)
        assert (resp.status, resp.body) == (200, pattern_bytes(16))


def _foreign_listener(port: int = 0, *, reuse_port: bool, listen: bool = True) -> socket.socket:
    """Another process's listener (nginx with or without ``reuseport``), played by this test."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    if listen:
        sock.listen(64)
    return sock


def _all_connections_reach(listener: socket.socket, count: int = 20) -> None:
    """Every new connection to the address lands on ``listener``: nobody shares its traffic."""
    listener.settimeout(10)
    port = listener.getsockname()[1]
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            conn, _ = listener.accept()  # times out if the kernel gave the connection to someone else
            conn.close()


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(child) for child in f.read().split()]
    except OSError:
        return []


# -- 8. port stealing --------------------------------------------------------------------------

@pytest.mark.parametrize("reuse_port", [False, True], ids=["plain", "reuseport"])
def test_start_refuses_an_address_another_process_listens_on(operated, origin, reuse_port):
    # With reuse_port, the old workers (SO_REUSEPORT) joined the foreign group: the start succeeded
    # and the kernel gave the gateway part of the other process's connections.
    foreign = _foreign_listener(reuse_port=reuse_port)
    port = foreign.getsockname()[1]
    try:
        gw = operated(_config(origin, listeners=[{"name": "edge", "address": f"127.0.0.1:{port}"}]),
                      wait=False, port=port)
        assert gw.exit_code() != 0
        log = gw.stderr()
        assert f"listener 'edge' cannot listen on 127.0.0.1:{port}" in log, log
        assert "worker 0 started" not in log  # refused before any worker was spawned
        _all_connections_reach(foreign)
    finally:
        foreign.close()


def test_second_master_on_the_same_address_refuses_and_the_first_keeps_serving(gateway, operated, origin):
    first = gateway(_config(origin), workers=2)
    second = operated(_config(origin, listeners=[{"name": "main", "address": first.address}]),
                      wait=False, port=first.port)
    assert second.exit_code() != 0
    assert f"listener 'main' cannot listen on {first.address}" in second.stderr(), second.stderr()
    _serves(first.port, 100)
    _wait(lambda: sum(w["requests"] for w in _status(first)["workers"]) == 100)  # all went to the first


def test_single_process_mode_refuses_a_taken_address(operated, origin):
    foreign = _foreign_listener(reuse_port=True)
    port = foreign.getsockname()[1]
    try:
        gw = operated(_config(origin, listeners=[{"name": "main", "address": f"127.0.0.1:{port}"}]),
                      args=("--single-process",), wait=False, port=port)
        assert gw.exit_code() == 1
        assert f"listener 'main' cannot listen on 127.0.0.1:{port}" in gw.stderr(), gw.stderr()
        _all_connections_reach(foreign)
    finally:
        foreign.close()


def test_reload_adding_a_taken_address_is_rejected_and_the_running_config_serves(gateway, origin):
    gw = gateway(_config(origin), workers=2)
    foreign = _foreign_listener(reuse_port=True)
    taken = foreign.getsockname()[1]
    listeners = [{"name": "main", "address": gw.address}, {"name": "extra", "address": f"127.0.0.1:{taken}"}]
    try:
        gw.write_config(_config(origin, listeners=listeners))
        result = _reload(gw)
        assert result["status"] == 422 and not result["ok"], result
        assert f"listener 'extra' cannot listen on 127.0.0.1:{taken}" in result["error"], result
        status = _status(gw)
        assert status["config"]["generation"] == 1 and status["listeners"] == [gw.address]
        _serves(gw.port)
        _all_connections_reach(foreign)
    finally:
        foreign.close()
    # once the other process is gone, the same reload goes through (the failed one claimed nothing)
    result = _reload(gw)
    assert result["ok"], result
    _serves(taken)


# -- 9. stop/reload after a port change ----------------------------------------------------------

def test_reload_and_stop_commands_find_the_master_after_a_port_change(operated, origin):
    gw = operated(_config(origin))
    new_port = free_port()
    gw.write_config(_config(origin, listeners=[{"name": "main", "address": f"127.0.0.1:{new_port}"}]))
    out = gw.cli("reload", "-c", str(gw.config_path))
    assert out.returncode == 0, out.stderr
    _wait(lambda: _status(gw)["config"]["generation"] == 2)
    _serves(new_port)
    gw.write_config(_config(origin, listeners=[{"name": "main", "address": f"127.0.0.1:{new_port}"}],
                            routes=[route("new", "/new", respond={"status": 202})]))
    out = gw.cli("reload", "-c", str(gw.config_path))
    assert out.returncode == 0, out.stderr
    _wait(lambda: request(new_port, "GET", "/new").status == 202)
    out = gw.cli("stop", "-c", str(gw.config_path))
    assert out.returncode == 0, out.stderr
    assert gw.exit_code() == 0
    assert list(gw.tmpdir.glob("*.pid")) == []  # the master removed its pid file


def test_a_reload_moves_the_pid_file_and_stop_finds_it_even_in_an_invalid_file(operated, origin):
    gw = operated(_config(origin))
    default = list(gw.tmpdir.glob("litemesh-op0-*.pid"))
    assert len(default) == 1 and default[0].read_text().strip() == str(gw.pid)
    moved = gw.directory / "run" / "gateway.pid"
    moved.parent.mkdir()
    gw.write_config(_config(origin, server={"pid_file": str(moved)}))
    result = _reload(gw)
    assert result["ok"], result
    assert {"field": "server.pid_file", "running": "", "file": str(moved)} in result["applied"]
    assert moved.read_text().strip() == str(gw.pid) and not default[0].exists()
    # an edit that breaks the file: `reload -c` says why and leaves the gateway alone, `stop -c` works
    gw.config_path.write_text(gw.config_path.read_text() + "bogus_section: {}\n")
    out = gw.cli("reload", "-c", str(gw.config_path))
    assert out.returncode == 1 and "bogus_section" in out.stderr, out.stderr
    assert _status(gw)["config"]["generation"] == 2
    out = gw.cli("stop", "-c", str(gw.config_path))
    assert out.returncode == 0, out.stderr
    assert gw.exit_code() == 0 and not moved.exists()


# -- 10. settings a reload cannot apply ----------------------------------------------------------

def test_reload_spawns_and_retires_workers_to_server_workers(operated, origin):
    gw = operated(_config(origin, server={"workers": 1}))
    assert len(_status(gw)["workers"]) == 1
    gw.write_config(_config(origin, server={"workers": 3}))
    result = _reload(gw)
    assert result["ok"], result
    assert {"field": "server.workers", "running": 1, "file": 3} in result["applied"]
    status = _status(gw)  # the answer waited for the new workers
    assert status["workers_desired"] == 3 and status["ready"]
    assert [w["ready"] for w in status["workers"]] == [True] * 3
    assert sorted(w["pid"] for w in status["workers"]) == sorted(_children(gw.pid))
    assert all(w["generation"] == 2 for w in status["workers"])
    _serves(gw.port, 30)
    gw.write_config(_config(origin, server={"workers": 1}))
    assert _reload(gw)["ok"]
    _wait(lambda: len(_children(gw.pid)) == 1 and len(_status(gw)["workers"]) == 1)
    _serves(gw.port)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_reload_pins_and_unpins_the_running_workers(gateway, origin):
    gw = gateway(_config(origin), workers=2)
    cpus = sorted(os.sched_getaffinity(0))

    def affinity() -> dict[int, set[int]]:
        return {w["index"]: os.sched_getaffinity(w["pid"]) for w in _status(gw)["workers"]}

    assert affinity() == {0: set(cpus), 1: set(cpus)}
    gw.write_config(_config(origin, server={"cpu_affinity": True}))
    assert _reload(gw)["applied"] == [{"field": "server.cpu_affinity", "running": False, "file": True}]
    assert affinity() == {0: {cpus[0]}, 1: {cpus[1]}}
    gw.write_config(_config(origin, server={"cpu_affinity": False}))
    assert _reload(gw)["ok"]
    assert affinity() == {0: set(cpus), 1: set(cpus)}


def test_reload_applies_a_new_listen_backlog(gateway, origin):
    if subprocess.run(["sh", "-c", "command -v ss"], capture_output=True).returncode:
        pytest.skip("needs ss (iproute2) to read a listen backlog")

    def backlogs() -> list[int]:  # ss shows a listening socket's backlog as its Send-Q
        out = subprocess.run(["ss", "-ltnH", f"sport = :{gw.port}"], capture_output=True, text=True).stdout
        return sorted(int(line.split()[2]) for line in out.splitlines())

    gw = gateway(_config(origin), workers=2)
    assert backlogs() == [2048, 2048]
    gw.write_config(_config(origin, listeners=[{"name": "main", "address": gw.address, "backlog": 77}]))
    result = _reload(gw)
    assert result["ok"] and result["needs_restart"] == [], result
    assert backlogs() == [77, 77]
    _serves(gw.port)


def test_reload_says_when_the_command_line_fixed_the_worker_count(gateway, origin):
    gw = gateway(_config(origin, server={"workers": 1}), workers=1)  # the fixture passes --workers 1
    gw.write_config(_config(origin, server={"workers": 2}))
    result = _reload(gw)
    assert result["ok"], result
    assert result["overridden"] == [{"field": "server.workers", "running": 1, "file": 2, "option": "--workers"}]
    assert result["applied"] == []
    status = _status(gw)
    assert len(status["workers"]) == 1 and status["overridden"] == result["overridden"]
    assert len(gw.worker_pids()) == 1


def test_reload_reports_what_needs_a_restart_and_applies_the_admin_token(gateway, origin, tmp_path):
    gw = gateway(_config(origin))
    new_admin, token = free_port(), "reloaded-token-0123456789"
    log_file = str(tmp_path / "gw.log")
    gw.write_config(_config(origin, admin={"address": f"127.0.0.1:{new_admin}", "token": token},
                            server={"log_file": log_file}))
    result = _reload(gw)
    assert result["ok"], result
    expected = [{"field": "server.log_file", "running": "", "file": log_file},
                {"field": "admin.address", "running": f"127.0.0.1:{gw.admin_port}", "file": f"127.0.0.1:{new_admin}"}]
    assert result["needs_restart"] == expected
    assert {"field": "admin.token", "running": None, "file": "<hidden>"} in result["applied"]
    # the token is live at once; the admin API stays where it was, and says what waits for a restart
    assert gw.admin("GET", "/status").status == 401
    status = _status(gw, headers=[("Authorization", f"Bearer {token}")])
    assert status["needs_restart"] == expected and status["last_reload"]["needs_restart"] == expected
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", new_admin), timeout=2).close()
    assert not Path(log_file).exists()
    assert "admin.address is '127.0.0.1:%d' in the file but '127.0.0.1:%d' runs: needs a restart" % (
        new_admin, gw.admin_port) in gw.stderr()
    _serves(gw.port)


# -- 15. a crash during start-up -----------------------------------------------------------------

def test_worker_killed_before_it_reported_ready_is_restarted(operated, origin):
    gw = operated(_config(origin), args=("--workers", "2"), wait=False)
    victim = _wait(lambda: _children(gw.pid)[:1], timeout=30, step=0.002)[0]
    os.kill(victim, signal.SIGKILL)  # well before it can be ready: an interpreter takes ~0.3 s to start
    gw._wait_ready(60.0)
    status = _status(gw)
    assert status["ready"] and sum(w["restarts"] for w in status["workers"]) == 1, status["workers"]
    assert victim not in [w["pid"] for w in status["workers"]]
    assert "died with -9" in gw.stderr()
    _serves(gw.port)


def test_worker_that_cannot_listen_reports_it_and_the_start_fails_naming_the_address(operated, origin):
    # A foreign socket that is bound (SO_REUSEADDR) but not listening passes the master's check,
    # then starts listening while the worker is held stopped: the worker's own bind fails.
    foreign = _foreign_listener(reuse_port=False, listen=False)
    port = foreign.getsockname()[1]
    try:
        gw = operated(_config(origin, listeners=[{"name": "edge", "address": f"127.0.0.1:{port}"}]),
                      wait=False, port=port)
        worker = _wait(lambda: _children(gw.pid)[:1], timeout=30, step=0.002)[0]
        os.kill(worker, signal.SIGSTOP)
        try:
            foreign.listen(16)
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            pytest.skip("the worker bound its listener before the test could stop it")
        finally:
            os.kill(worker, signal.SIGCONT)
        assert gw.exit_code() == 1
        log = gw.stderr()
        assert f"cannot start: worker 0: listener 'edge' cannot listen on 127.0.0.1:{port}" in log, log
        assert "restarting in" not in log  # a reported start-up error is not retried
        _all_connections_reach(foreign)
    finally:
        foreign.close()
