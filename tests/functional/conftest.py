"""Fixtures for the functional suite: real gateway processes in front of real origins.

``gateway(config)`` writes ``config`` (a dict, or YAML text) to a temporary file, starts
``python -m litemesh run -c FILE`` as a subprocess and returns a :class:`Gateway` once its port
accepts connections.  Dict configs get a ``listeners`` entry on a free port and short client
timeouts unless they set their own; YAML text gets its port through ``LITEMESH_LISTEN``.
On teardown the process gets SIGTERM, then SIGKILL after 5 s.  Its stderr goes to a file whose
tail is attached to the report of any failing test while the gateway runs.

``gateway`` is function-scoped; ``module_gateway`` is the same factory, module-scoped, so one
gateway can serve every test of a module.  ``LITEMESH_NO_EXTENSIONS`` and the rest of the
environment are inherited, so ``LITEMESH_NO_EXTENSIONS=1 pytest`` tests the pure build.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from tests.support.origins import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]

#: client-side timeouts small enough for the timeout tests to run fast
DEFAULT_TIMEOUTS = {"client_header": "1s", "client_body": "1s", "keepalive": "10s", "send": "10s",
                    "drain": "5s"}
#: upstream timeouts for services built by :func:`service`
UPSTREAM_TIMEOUTS = {"connect": "1s", "read": "2s", "write": "2s"}

_LIVE: list["Gateway"] = []


def service(name: str, *targets: Any, **extra: Any) -> dict[str, Any]:
    """A service entry pointing at origins (objects with ``.address``) or "host:port" strings."""
    spec: dict[str, Any] = {
        "name": name,
        "targets": [t if isinstance(t, str) else t.address for t in targets],
        "timeouts": dict(UPSTREAM_TIMEOUTS),
    }
    timeouts = extra.pop("timeouts", None)
    if timeouts:
        spec["timeouts"].update(timeouts)
    spec.update(extra)
    return spec


def route(name: str, paths: str | list[str], service_name: str | None = None, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "paths": [paths] if isinstance(paths, str) else list(paths)}
    if service_name is not None:
        spec["service"] = service_name
    spec.update(extra)
    return spec


def env_for_gateway(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(extra)
    return env


class Gateway:
    """One running gateway subprocess."""

    def __init__(self, config: dict[str, Any] | str, directory: Path, name: str = "gateway", *,
                 workers: int = 1, args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.admin_port = free_port()
        self.pid_file = directory / f"{name}.pid"
        self.address = f"127.0.0.1:{self.port}"
        self.directory = directory
        self.config_path = directory / f"{name}.yaml"
        self.stderr_path = directory / f"{name}.stderr"
        self._text_config = isinstance(config, str)
        # a config with its own admin section: readiness is then waited for on the listener
        self._own_admin = isinstance(config, dict) and "admin" in config
        self.write_config(config)
        env_extra = {"LITEMESH_LISTEN": self.address,
                     "LITEMESH_ADMIN__ADDRESS": f"127.0.0.1:{self.admin_port}"} if self._text_config else {}
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "litemesh", "run", "-c", str(self.config_path), "--workers", str(workers),
             "--pid-file", str(self.pid_file), *args],
            cwd=REPO_ROOT, env=env_for_gateway(**env_extra), stdin=subprocess.DEVNULL,
            stdout=self._stderr, stderr=self._stderr)
        _LIVE.append(self)
        try:
            self._wait_ready(10.0)
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    # -- config ---------------------------------------------------------------------------
    def render(self, config: dict[str, Any] | str) -> str:
        if isinstance(config, str):
            return config
        config = dict(config)
        config.setdefault("listeners", [{"name": "main", "address": self.address}])
        config.setdefault("admin", {"address": f"127.0.0.1:{self.admin_port}"})
        timeouts = dict(DEFAULT_TIMEOUTS)
        timeouts.update(config.get("timeouts") or {})
        config["timeouts"] = timeouts
        return yaml.safe_dump(config, sort_keys=False)

    def write_config(self, config: dict[str, Any] | str) -> None:
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(self.render(config))
        os.replace(tmp, self.config_path)  # atomic: a reload never reads half a file

    def reload(self, config: dict[str, Any] | str) -> None:
        self.write_config(config)
        self.proc.send_signal(signal.SIGHUP)

    # -- process --------------------------------------------------------------------------
    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode} at start-up:\n{self.stderr()}")
            try:  # every worker is up when the master's readiness says so
                if self._own_admin:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                    return
                with socket.create_connection(("127.0.0.1", self.admin_port), timeout=0.5) as sock:
                    sock.sendall(b"GET /ready HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
                    if sock.recv(64).startswith(b"HTTP/1.1 200"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gateway did not accept on {self.address} within {timeout}s:\n{self.stderr()}")
            time.sleep(0.05)

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def rss(self) -> int:
        """Resident set size of the master and its workers, in bytes."""
        return sum(_rss(pid) for pid in [self.pid, *self.worker_pids()])

    def worker_pids(self) -> list[int]:
        try:
            with open(f"/proc/{self.pid}/task/{self.pid}/children") as f:
                return [int(pid) for pid in f.read().split()]
        except OSError:
            return []

    def admin(self, method: str, path: str, **kwargs: Any):  # type: ignore[no-untyped-def]
        from tests.support.rawclient import request

        return request(self.admin_port, method, path, **kwargs)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int | None:
        """SIGTERM, wait up to 5 s, then SIGKILL.  Returns the exit code."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if not self._stderr.closed:
            self._stderr.close()
        if self in _LIVE:
            _LIVE.remove(self)
        return self.proc.returncode


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _factory(directory_source) -> Iterator:  # type: ignore[no-untyped-def]
    started: list[Gateway] = []

    def start(config: dict[str, Any] | str, name: str | None = None, **options: Any) -> Gateway:
        name = name or f"gateway{len(started)}"
        gw = Gateway(config, directory_source(), name, **options)
        started.append(gw)
        return gw

    try:
        yield start
    finally:
        for gw in started:
            gw.stop()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator:
    """Factory: ``gw = gateway(config_dict_or_yaml)``; stopped at the end of the test."""
    yield from _factory(lambda: tmp_path)


@pytest.fixture(scope="module")
def module_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Module-scoped twin of :func:`gateway`, for gateways shared by the tests of a module."""
    yield from _factory(lambda: tmp_path_factory.mktemp("gw"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for gw in list(_LIVE):
            tail = gw.stderr()[-6000:]
            state = "running" if gw.alive() else f"exited {gw.proc.returncode}"
            report.sections.append((f"gateway {gw.address} ({state}) stderr", tail or "<empty>"))
