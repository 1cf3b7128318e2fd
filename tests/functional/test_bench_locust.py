"""bench/locustfile.py against the setups it is meant for (issue 7, point 13).

Every request the locustfile makes comes from a mix of bench/loadmix.py; these tests send every
call of each mix to a real gateway in front of the right upstreams and check the status locust
counts as success: the demo mix against ``litemesh demo`` (moved to free ports, as the box is
shared), the origin mix against bench/origin.py behind a catch-all route.  Locust is a test
dependency (``make test`` installs it), so the slow tests also run ``bench/locust_run.py`` (what
``make bench-locust`` runs) for a few seconds and require 0 failures; without locust they skip.
"""
from __future__ import annotations

import importlib.util
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.origins import free_port
from tests.support.rawclient import request

from .conftest import REPO_ROOT, env_for_gateway, route, service

pytestmark = pytest.mark.timeout(90)

BENCH = REPO_ROOT / "bench"
DEMO_UPSTREAMS = {"users-1", "users-2", "orders-1"}


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


loadmix = _load("loadmix")


def _status(port: int, path: str) -> int | None:
    try:
        return request(port, "GET", path, timeout=2).status
    except OSError:
        return None


class Demo:
    """``litemesh demo`` on free ports, in its own process group."""

    def __init__(self, directory: Path, *args: str) -> None:
        self.port, self.admin_port = free_port(), free_port()
        self.log = directory / "demo.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "litemesh", "demo", "--listen", f"127.0.0.1:{self.port}",
                 "--admin", f"127.0.0.1:{self.admin_port}", *args],
                cwd=REPO_ROOT, env=env_for_gateway(), stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                start_new_session=True)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """The admin API says every worker serves, and a proxied route answers (upstreams up)."""
        deadline = time.monotonic() + timeout
        while not (_status(self.admin_port, "/ready") == 200 and _status(self.port, "/api/users") == 200):
            assert self.proc.poll() is None, f"demo exited with {self.proc.returncode}:\n{self.output()}"
            assert time.monotonic() < deadline, f"demo not ready within {timeout} s:\n{self.output()}"
            time.sleep(0.05)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)  # the master, its workers and the demo upstreams
            except ProcessLookupError:
                break
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    running = Demo(tmp_path_factory.mktemp("demo"), "--upstream-ports", "0,0,0")
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def _drive(port: int, mix, rounds: int = 3) -> list[tuple[str, str, int, int, bytes]]:  # type: ignore[no-untyped-def]
    """Send every call of ``mix`` ``rounds`` times; returns what did not get the expected status."""
    rng = random.Random(7)
    wrong = []
    for call in mix.calls:
        for _ in range(rounds):
            path, body, headers = call.render(rng)
            resp = request(port, call.method, path, headers=headers, body=body, timeout=10)
            if resp.status != call.status:
                wrong.append((call.name, path, call.status, resp.status, resp.body[:200]))
    return wrong


def test_demo_mix_gets_the_statuses_locust_counts_as_success(demo):
    mix = loadmix.MIXES["demo"]
    assert {call.status for call in mix.calls} >= {200, 301, 403, 404}
    assert _drive(demo.port, mix) == []
    # the 200s under /api are answered by the demo upstreams, not by the gateway itself
    rng = random.Random(1)
    for call in mix.calls:
        path, body, headers = call.render(rng)
        if path.startswith("/api/"):
            answer = request(demo.port, call.method, path, headers=headers, body=body).json()
            assert answer["served_by"] in DEMO_UPSTREAMS, answer
            if body:
                assert answer["json"]["currency"] == "EUR"


def test_origin_mix_gets_the_statuses_locust_counts_as_success(gateway, tmp_path):
    origin_port = free_port()
    origin = subprocess.Popen([sys.executable, str(BENCH / "origin.py"), "--port", str(origin_port)],
                              cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while _status(origin_port, "/") != 200:
            assert origin.poll() is None and time.monotonic() < deadline, "bench/origin.py did not start"
            time.sleep(0.05)
        gw = gateway({"services": [service("origin", f"127.0.0.1:{origin_port}")],
                      "routes": [route("all", "/", "origin")]})
        assert _drive(gw.port, loadmix.MIXES["origin"]) == []
    finally:
        origin.terminate()
        origin.wait(10)


def test_relocated_demo_reloads_its_relocated_config(demo):
    """The moved config is a file of its own: a reload keeps the moved ports."""
    answer = request(demo.admin_port, "POST", "/reload", timeout=30)
    assert answer.status == 200, answer.body
    assert answer.json()["generation"] >= 2
    assert request(demo.port, "GET", "/api/users").json()["served_by"] in DEMO_UPSTREAMS


def test_demo_options_are_checked(tmp_path):
    env = env_for_gateway()
    result = subprocess.run([sys.executable, "-m", "litemesh", "demo", "--upstream-ports", "1,2"], cwd=REPO_ROOT,
                            env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "--upstream-ports" in result.stderr and "expected 3 comma-separated ports" in result.stderr

    with socket.socket() as taken:  # an upstream port already in use: a clear error, no gateway
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "litemesh", "demo", "--listen", f"127.0.0.1:{free_port()}",
                                 "--admin", "127.0.0.1:0", "--upstream-ports", f"0,{busy},0"],
                                cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "litemesh: demo upstreams cannot listen" in result.stderr and str(busy) in result.stderr, result.stderr


# --------------------------------------------------------------------------------------------
# locust itself (in the test extra; `pip install -e ".[bench]"` elsewhere)


def _locust_run(*args: str) -> subprocess.CompletedProcess:
    # find_spec, never an import: importing locust monkey-patches this process with gevent, and
    # every thread-backed origin of the tests that follow would then share one event loop
    if importlib.util.find_spec("locust") is None:
        pytest.skip("locust is not installed")
    return subprocess.run([sys.executable, str(BENCH / "locust_run.py"), "--time", "4s", "--users", "5", *args],
                          cwd=REPO_ROOT, env=env_for_gateway(), capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_locust_against_a_demo_it_starts():
    result = _locust_run("--host", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "started demo" in result.stderr and "stopped demo" in result.stderr
    assert "OK: locust exit 0" in result.stderr


@pytest.mark.slow
def test_locust_against_a_running_demo(demo):
    result = _locust_run("--host", f"http://127.0.0.1:{demo.port}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "using the gateway already answering" in result.stderr
    assert demo.proc.poll() is None  # not ours to stop


@pytest.mark.slow
def test_locust_origin_mix():
    result = _locust_run("--host", f"http://127.0.0.1:{free_port()}", "--mix", "origin")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_bench_readme_stands_on_its_own():
    import re

    text = (BENCH / "README.md").read_text()
    assert "../" not in text and "shared/tools" not in text
    for path in sorted(set(re.findall(r"`((?:bench|litemesh)/[\w./-]+\.(?:py|yaml|sh))`", text))):
        assert (REPO_ROOT / path).exists(), path
