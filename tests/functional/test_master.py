"""The process model over real processes and sockets: master + SO_REUSEPORT workers, restarts,
zero-downtime reload under load, drain, worker scaling, shared-memory metrics, admin API, CLI."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from websockets.sync.client import connect as ws_connect

from tests.support.origins import HttpOrigin, pattern_bytes
from tests.support.rawclient import RawConnection, build_request, request

from .conftest import REPO_ROOT, env_for_gateway, route, service
from .helpers import metric_sum
from .helpers import wait_until as _wait

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def origin():
    with HttpOrigin() as srv:
        yield srv


def _config(origin, *extra_routes, **top):  # type: ignore[no-untyped-def]
    return {"services": [service("main", origin)],
            "routes": [route("main", ["/bytes", "/echo", "/slow", "/ws", "/status"], "main"), *extra_routes],
            **top}


def _slow_config(origin):  # type: ignore[no-untyped-def]
    """``_config`` with room for requests that stay in flight for seconds (upstream read 15 s)."""
    config = _config(origin)
    config["services"] = [service("main", origin, timeouts={"read": "15s"})]
    return config


def _status(gw) -> dict:  # type: ignore[no-untyped-def]
    resp = gw.admin("GET", "/status", timeout=5)
    assert resp.status == 200, resp.body
    return resp.json()


def _get_fresh(gw, path: str = "/bytes/10", timeout: float = 5.0):  # type: ignore[no-untyped-def]
    """One request on a new connection: the kernel picks the worker (SO_REUSEPORT)."""
    return request(gw.port, "GET", path, timeout=timeout, headers=[("Connection", "close")])


def _has_open(pid: int, path: Path) -> bool:
    """Whether process ``pid`` holds ``path`` open (the file now at that path, not a renamed one)."""
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(path) for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def _worker_pids(status: dict) -> dict[int, int]:
    return {w["index"]: w["pid"] for w in status["workers"] if w["pid"]}


class Load:
    """Background clients sending requests until stopped: half on keep-alive connections (which a
    reload must not disturb), half on a new connection each (which must always find a worker)."""

    def __init__(self, port: int, threads: int = 4, path: str = "/bytes/32", max_requests: int = 200_000) -> None:
        self.port, self.path, self.max_requests = port, path, max_requests
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i % 2 == 0,), daemon=True) for i in range(threads)]

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def _record(self, ok: bool, why: str = "") -> None:
        with self._lock:
            if ok:
                self.ok += 1
            else:
                self.failures.append(why)

    def _run(self, keep_alive: bool) -> None:
        expected = pattern_bytes(32)
        conn: RawConnection | None = None
        while not self._stop.is_set() and self.ok < self.max_requests:
            try:
                if conn is None:
                    conn = RawConnection("127.0.0.1", self.port, timeout=10)
                resp = conn.request("GET", self.path, headers=None if keep_alive else [("Connection", "close")])
                good = resp.status == 200 and resp.body == expected
                self._record(good, f"status {resp.status}")
                if not keep_alive or "close" in resp.header("connection", "").lower():
                    conn.close()
                    conn = None
            except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
                self._record(False, f"{type(exc).__name__}: {exc}")
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()


def test_workers_serve_and_metrics_sum_over_workers(gateway, origin):
    gw = gateway(_config(origin), workers=2)
    status = _status(gw)
    assert status["ready"] and len(status["workers"]) == 2
    assert sorted(_worker_pids(status).values()) == sorted(gw.worker_pids())
    sent = 300
    for _ in range(sent):
        assert _get_fresh(gw).status == 200
    for _ in range(20):
        assert _get_fresh(gw, "/nothing-routes-here").status == 404
    status = _status(gw)
    per_worker = [w["requests"] for w in status["workers"]]
    assert sum(per_worker) == sent + 20
    assert all(count > 0 for count in per_worker), f"SO_REUSEPORT spread {per_worker}"
    metrics = gw.admin("GET", "/metrics").body.decode()
    assert metric_sum(metrics, "litemesh_requests_total", route="main", code_class="2xx") == sent
    assert metric_sum(metrics, "litemesh_requests_total", code_class="4xx") == 20
    assert metric_sum(metrics, "litemesh_request_duration_seconds_count") == sent + 20
    assert "litemesh_config_generation 1" in metrics


def test_killed_worker_is_restarted_while_the_other_serves(gateway, origin):
    gw = gateway(_config(origin), workers=2)
    before = _worker_pids(_status(gw))
    victim = before[0]
    with Load(gw.port, threads=2) as load:
        _wait(lambda: load.ok >= 20)
        os.kill(victim, signal.SIGKILL)
        ok_at_kill = load.ok
        # the other worker answers while the victim is down (before its replacement is ready)
        _wait(lambda: load.ok >= ok_at_kill + 20 or _status(gw)["workers"][0]["pid"] not in (None, victim))
        ok_after_kill = load.ok
        restarted = _wait(lambda: (lambda s: s["ready"] and _worker_pids(s).get(0) not in (None, victim) and s)(
            _status(gw)))
        ok_at_restart = load.ok
        _wait(lambda: load.ok >= ok_at_restart + 20)
    assert ok_after_kill > ok_at_kill, "nobody answered right after the kill"
    assert restarted["workers"][0]["restarts"] == 1
    assert _worker_pids(restarted)[1] == before[1], "the other worker was disturbed"
    # only requests that were on the killed worker's connections may fail
    assert len(load.failures) <= 4, load.failures[:10]
    for _ in range(40):
        assert _get_fresh(gw).status == 200


def _reload_via_admin(gw) -> dict:  # type: ignore[no-untyped-def]
    resp = gw.admin("POST", "/reload", timeout=30)
    return {"status": resp.status, **resp.json()}


def test_reload_under_load_drops_nothing_and_keeps_websockets(gateway, origin):
    gw = gateway(_config(origin), workers=2)
    with ws_connect(f"ws://127.0.0.1:{gw.port}/ws", proxy=None, compression=None, open_timeout=5) as ws:
        ws.send("before")
        assert ws.recv(timeout=5) == "before"
        with Load(gw.port, threads=4) as load:
            for generation in range(2, 8):
                time.sleep(0.25)
                extra = route(f"added{generation}", f"/gen{generation}", respond={"status": 200, "body": str(generation)})
                gw.write_config(_config(origin, extra))
                if generation % 2:
                    gw.proc.send_signal(signal.SIGHUP)
                    _wait(lambda: _status(gw)["config"]["generation"] == generation)
                else:
                    result = _reload_via_admin(gw)
                    assert result["status"] == 200 and result["ok"], result
                    assert result["generation"] == generation
                # live in every worker: new connections land on both, all see the new route
                for _ in range(12):
                    resp = _get_fresh(gw, f"/gen{generation}")
                    assert (resp.status, resp.body) == (200, str(generation).encode())
            _wait(lambda: load.ok > 300, timeout=60)  # enough traffic went through the reloads
        ws.send("after six reloads")
        assert ws.recv(timeout=5) == "after six reloads"
    assert load.failures == [], load.failures[:10]
    assert load.ok > 300
    status = _status(gw)
    assert status["last_reload"]["ok"] and all(w["generation"] == 7 for w in status["workers"])
    assert all(w["restarts"] == 0 for w in status["workers"])


def test_invalid_reload_keeps_the_running_config(gateway, origin):
    gw = gateway(_config(origin), workers=2)
    good = gw.config_path.read_text()
    gw.config_path.write_text(good.replace("paths:", "pathz:", 1))
    result = _reload_via_admin(gw)
    assert result["status"] == 422 and not result["ok"]
    assert re.search(r"\.yaml:\d+:\d+: routes\[0\]", result["error"]), result["error"]
    status = _status(gw)
    assert status["config"]["generation"] == 1 and status["last_reload"]["ok"] is False
    assert "pathz" in status["last_reload"]["error"]
    assert _get_fresh(gw).status == 200  # still serving generation 1
    gw.config_path.write_text(good + "\n")
    assert _reload_via_admin(gw)["ok"]
    assert _status(gw)["config"]["generation"] == 2


def test_sigterm_drains_in_flight_request_and_readiness_goes_false(gateway, origin):
    gw = gateway(_slow_config(origin), workers=2)
    conn = RawConnection("127.0.0.1", gw.port, timeout=10)
    conn.send(build_request("GET", "/slow/3000?m=sigterm-drain"))
    assert origin.wait_for_target("sigterm-drain")  # in flight at the origin
    gw.proc.send_signal(signal.SIGTERM)
    _wait(lambda: gw.admin("GET", "/ready", timeout=3).status == 503, timeout=2.5)  # while it still runs
    resp = conn.recv_response(timeout=10)
    assert (resp.status, resp.body) == (200, b"slow\n")
    conn.close()
    assert gw.proc.wait(15) == 0
    assert not gw.worker_pids()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", gw.port), timeout=1).close()


def test_sigttin_adds_and_sigttou_retires_a_worker(gateway, origin):
    gw = gateway(_config(origin), workers=1)
    gw.proc.send_signal(signal.SIGTTIN)
    status = _wait(lambda: (lambda s: s["ready"] and len(s["workers"]) == 2 and s)(_status(gw)))
    assert status["workers_desired"] == 2
    gw.proc.send_signal(signal.SIGTTOU)
    status = _wait(lambda: (lambda s: len(s["workers"]) == 1 and s)(_status(gw)))
    assert status["workers_desired"] == 1 and status["ready"]
    for _ in range(10):
        assert _get_fresh(gw).status == 200


def test_master_killed_workers_exit(gateway, origin):
    gw = gateway(_config(origin), workers=2)
    pids = gw.worker_pids()
    assert len(pids) == 2
    gw.proc.kill()
    gw.proc.wait(5)

    def gone() -> bool:
        return all(not os.path.exists(f"/proc/{pid}") or _zombie(pid) for pid in pids)

    _wait(gone, timeout=15)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_admin_token(gateway, origin):
    token = "s3cret-token-0123456789"
    gw = gateway(_config(origin, admin={"address": "127.0.0.1:0", "token": token}))
    # port 0 for admin: the master prints the bound port
    port = int(_wait(lambda: re.search(r"admin API on http://127\.0\.0\.1:(\d+)", gw.stderr()), timeout=10).group(1))
    assert request(port, "GET", "/status").status == 401
    assert request(port, "GET", "/status", headers=[("Authorization", "Bearer nope")]).status == 401
    ok = request(port, "GET", "/status", headers=[("Authorization", f"Bearer {token}")])
    assert ok.status == 200 and ok.json()["ready"]
    assert request(port, "GET", "/ready").status == 200


def test_reload_and_stop_commands(gateway, origin):
    gw = gateway(_config(origin), workers=1)
    cli = [sys.executable, "-m", "litemesh"]
    gw.write_config(_config(origin, route("cmd", "/cmd", respond={"status": 202})))
    out = subprocess.run([*cli, "reload", "--pid-file", str(gw.pid_file)], cwd=REPO_ROOT, env=env_for_gateway(),
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    _wait(lambda: _get_fresh(gw, "/cmd").status == 202)
    out = subprocess.run([*cli, "stop", "--pid-file", str(gw.pid_file)], cwd=REPO_ROOT, env=env_for_gateway(),
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert gw.proc.wait(5) == 0
    assert not gw.pid_file.exists()
    out = subprocess.run([*cli, "stop", "--pid-file", str(gw.pid_file)], cwd=REPO_ROOT, env=env_for_gateway(),
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and "no running gateway" in out.stderr


def test_crash_looping_worker_backs_off(gateway, origin):
    gw = gateway(_config(origin), workers=2)
    restarts = []
    for _ in range(3):
        pid = _worker_pids(_status(gw))[1]
        os.kill(pid, signal.SIGKILL)
        status = _wait(lambda: (lambda s: s["ready"] and _worker_pids(s).get(1) not in (None, pid) and s)(_status(gw)))
        restarts.append(status["workers"][1]["restarts"])
    assert restarts == [1, 2, 3]
    assert "restarting in 0.50 s" in gw.stderr()  # the second quick death doubled the delay
    assert _status(gw)["workers"][0]["restarts"] == 0


def test_sigquit_drains_and_sigint_stops_fast(gateway, origin):
    gw = gateway(_slow_config(origin), workers=2)
    conn = RawConnection("127.0.0.1", gw.port, timeout=10)
    conn.send(build_request("GET", "/slow/800?m=sigquit-drain"))
    assert origin.wait_for_target("sigquit-drain")
    gw.proc.send_signal(signal.SIGQUIT)
    assert conn.recv_response(timeout=10).status == 200  # drained like SIGTERM
    conn.close()
    assert gw.proc.wait(15) == 0

    gw = gateway(_slow_config(origin), workers=2)
    conn = RawConnection("127.0.0.1", gw.port, timeout=10)
    conn.send(build_request("GET", "/slow/8000?m=sigint-fast"))
    assert origin.wait_for_target("sigint-fast")
    started = time.monotonic()
    gw.proc.send_signal(signal.SIGINT)
    assert gw.proc.wait(10) == 0
    assert time.monotonic() - started < 6.0, "SIGINT waited for the in-flight request"  # it takes 8 s
    conn.close()


def test_sigusr1_reopens_log_files_of_master_and_workers(gateway, origin, tmp_path):
    log_file = tmp_path / "litemesh.log"
    gw = gateway(_config(origin), workers=2, args=("--log-file", str(log_file), "--log-level", "debug"))
    assert "worker 0 started" in log_file.read_text()
    rotated = tmp_path / "litemesh.log.1"
    log_file.rename(rotated)  # what logrotate does
    gw.proc.send_signal(signal.SIGUSR1)
    # every process has the new file open (the master forwards SIGUSR1 to the workers)
    _wait(lambda: all(_has_open(pid, log_file) for pid in [gw.pid, *_worker_pids(_status(gw)).values()]))
    gw.write_config(_config(origin, route("r", "/r", respond={"status": 204})))
    assert _reload_via_admin(gw)["ok"]  # the master logs the reload, every worker logs its generation
    text = _wait(lambda: log_file.exists() and (lambda t: "generation 2 live" in t and t)(log_file.read_text()))
    worker_pids = _worker_pids(_status(gw)).values()
    assert all(f"[{pid}]" in text for pid in worker_pids), text  # each worker writes to the new file
    assert f"[{gw.pid}]" in text
    assert "generation 2" not in rotated.read_text()


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_cpu_affinity_pins_each_worker(gateway, origin):
    gw = gateway(_config(origin), workers=2, args=("--cpu-affinity",))
    cpus = sorted(os.sched_getaffinity(0))
    pinned = {index: os.sched_getaffinity(pid) for index, pid in _worker_pids(_status(gw)).items()}
    assert pinned == {0: {cpus[0]}, 1: {cpus[1]}}
    assert os.sched_getaffinity(gw.pid) == set(cpus)  # the master stays unpinned


def test_idle_keepalive_connection_survives_reloads(gateway, origin):
    gw = gateway(_config(origin), workers=2)
    idle = [RawConnection("127.0.0.1", gw.port, timeout=5) for _ in range(6)]  # lands on both workers
    for conn in idle:
        assert conn.request("GET", "/bytes/5").status == 200
    for generation in (2, 3):
        gw.write_config(_config(origin, route(f"g{generation}", f"/g{generation}", respond={"status": 201})))
        assert _reload_via_admin(gw)["ok"]
    for conn in idle:  # same connections, now on the new generation
        assert not conn.is_closed(0.05)
        assert conn.request("GET", "/g3").status == 201
        conn.close()


def test_port_zero_listener_keeps_its_port_across_reloads(gateway, origin):
    config = _config(origin, listeners=[{"name": "main", "address": "127.0.0.1:0"}])
    gw = gateway(config, workers=2)
    listeners = _status(gw)["listeners"]
    port = int(listeners[0].rsplit(":", 1)[1])
    assert port != 0
    for _ in range(20):  # one port for both workers
        assert request(port, "GET", "/bytes/3").status == 200
    gw.write_config(_config(origin, route("new", "/new", respond={"status": 202}),
                            listeners=[{"name": "main", "address": "127.0.0.1:0"}]))
    assert _reload_via_admin(gw)["ok"]
    assert _status(gw)["listeners"] == listeners
    for _ in range(20):
        assert request(port, "GET", "/new").status == 202


def test_reload_while_a_worker_restarts(gateway, origin):
    gw = gateway(_config(origin), workers=2)
    victim = _worker_pids(_status(gw))[1]
    os.kill(victim, signal.SIGKILL)
    gw.write_config(_config(origin, route("late", "/late", respond={"status": 202})))
    started = time.monotonic()
    result = _reload_via_admin(gw)
    assert result["ok"], result
    assert time.monotonic() - started < 10  # no wait for an answer that a restarting worker never sends
    status = _wait(lambda: (lambda s: s["ready"] and _worker_pids(s).get(1) not in (None, victim) and s)(_status(gw)))
    assert all(w["generation"] == 2 for w in status["workers"]), status["workers"]
    for _ in range(20):
        assert _get_fresh(gw, "/late").status == 202
