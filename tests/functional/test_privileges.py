"""``server.user``/``server.group`` (issue 7, point 14): the master starts as root and stays root, each
worker binds its listeners and then serves as the configured user.

Most tests need root (they are skipped otherwise).  The "not root" cases run the gateway in a user
namespace (``unshare --user``): there the process is uid 65534 and cannot switch users, yet it can
still read the interpreter wherever it is installed.
"""
from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.support.origins import HttpOrigin, free_port

from .conftest import REPO_ROOT, env_for_gateway, route, service
from .helpers import get, wait_until

pytestmark = pytest.mark.timeout(60)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")


def _nobody() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' on this machine")


def _ids(pid: int) -> dict[str, list[int]]:
    """Uid (real, effective, saved, fs), Gid (same) and Groups of a process, from /proc."""
    out = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid", "Groups"):
                out[key] = [int(v) for v in value.split()]
    return out


def _wait(predicate, what: str, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    return wait_until(predicate, timeout, what)


def _stop(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    """SIGTERM: the process must exit 0 (a drain); killed if it does not exit at all."""
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
def origin():
    with HttpOrigin() as srv:
        yield srv


@pytest.fixture
def shared_dir():
    """A directory every user may enter (pytest's tmp_path sits below a root-only 0700 directory)."""
    path = Path(tempfile.mkdtemp(prefix="litemesh-priv-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _config(origin, user: str = "nobody", **server):  # type: ignore[no-untyped-def]
    return {
        "server": {"user": user, **server},
        # a target by name: its first lookup loads the idna codec, which must happen before the switch
        "services": [service("main", origin), service("named", f"localhost:{origin.address.rsplit(':', 1)[1]}")],
        "routes": [route("main", "/echo", "main"), route("named", "/named", "named", rewrite="/echo/named"),
                   route("hello", "=/hello", respond={"status": 200, "body": "hi"})],
    }


@needs_root
def test_workers_serve_as_server_user_and_master_stays_root(gateway, origin):
    nobody = _nobody()
    groups = sorted(set(os.getgrouplist("nobody", nobody.pw_gid)))
    gw = gateway(_config(origin), workers=2)
    for _ in range(4):  # fresh connections: SO_REUSEPORT spreads them over both workers
        assert get(gw.port, "/hello").text == "hi"
        assert get(gw.port, "/echo/x").json()["path"] == "/echo/x"
        assert get(gw.port, "/named").json()["path"] == "/echo/named"

    assert _ids(gw.pid) == {"Uid": [0, 0, 0, 0], "Gid": [0, 0, 0, 0], "Groups": []}
    workers = _wait(lambda: len(gw.worker_pids()) == 2 and gw.worker_pids(), "two workers")
    for pid in workers:
        assert _ids(pid) == {"Uid": [nobody.pw_uid] * 4, "Gid": [nobody.pw_gid] * 4, "Groups": groups}, pid

    # a worker the master restarts switches users too
    os.kill(workers[0], signal.SIGKILL)

    def replaced() -> list[int]:
        status = gw.admin("GET", "/status").json()
        pids = [w["pid"] for w in status["workers"] if w["ready"] and w["pid"]]
        return pids if len(pids) == 2 and workers[0] not in pids else []

    for pid in _wait(replaced, "the killed worker's replacement"):
        assert _ids(pid)["Uid"] == [nobody.pw_uid] * 4, pid
    assert get(gw.port, "/echo/after").json()["path"] == "/echo/after"


@needs_root
def test_server_group(gateway, origin):
    nobody = _nobody()
    gw = gateway(_config(origin, group="root"))  # an odd choice, but one every machine has
    assert get(gw.port, "/hello").text == "hi"
    pid = _wait(gw.worker_pids, "the worker")[0]
    ids = _ids(pid)
    assert ids["Uid"] == [nobody.pw_uid] * 4 and ids["Gid"] == [0, 0, 0, 0], ids


@needs_root
def test_log_file_reopens_after_the_switch(gateway, origin, shared_dir):
    """The master creates the log file and hands it to the user, so workers that no longer have
    root rights reopen it after a rotation (SIGUSR1)."""
    nobody = _nobody()
    log = shared_dir / "litemesh.log"
    gw = gateway(_config(origin), args=("--log-file", str(log), "--log-level", "debug"))
    assert get(gw.port, "/hello").status == 200
    assert log.stat().st_uid == nobody.pw_uid
    worker = _wait(gw.worker_pids, "the worker")[0]

    log.rename(shared_dir / "litemesh.log.1")  # what logrotate does
    os.kill(gw.pid, signal.SIGUSR1)
    _wait(log.exists, "the new log file")
    assert gw.admin("POST", "/reload").status == 200  # makes the worker log "generation 2 live"
    _wait(lambda: re.search(rf"litemesh\.worker\[{worker}\]: generation 2 live", log.read_text()),
          "the worker's line in the new log file")
    assert log.stat().st_uid == nobody.pw_uid


@needs_root
def test_reload_adding_a_privileged_port_is_refused_clearly(gateway, origin):
    limit = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    privileged = _free_port_below(limit)
    if privileged is None:
        pytest.skip(f"no free port below {limit}")
    config = _config(origin)
    gw = gateway(config)
    config["listeners"] = [{"name": "main", "address": gw.address},
                           {"name": "low", "address": f"127.0.0.1:{privileged}"}]
    gw.write_config(config)
    answer = gw.admin("POST", "/reload")
    assert answer.status == 422, answer.body
    error = answer.json()["error"]
    assert f"cannot listen on 127.0.0.1:{privileged}" in error and f"ports below {limit} need root" in error, error
    assert "restart" in error
    assert get(gw.port, "/hello").text == "hi"  # the running listener keeps serving
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", privileged), timeout=1).close()


def _free_port_below(limit: int) -> int | None:
    for port in range(limit - 1, max(limit - 400, 1), -1):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return None


@needs_root
def test_single_process_mode_switches_user(origin, shared_dir):
    nobody = _nobody()
    port = free_port()
    config = shared_dir / "single.yaml"
    config.write_text(f"listeners: [{{address: '127.0.0.1:{port}'}}]\n"
                      "server: {user: nobody}\n"
                      f"services: [{{name: main, targets: ['{origin.address}']}}]\n"
                      "routes: [{name: main, paths: [/echo], service: main}]\n")
    proc = subprocess.Popen([sys.executable, "-m", "litemesh", "run", "--single-process", "-c", str(config)],
                            cwd=REPO_ROOT, env=env_for_gateway(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait(lambda: proc.poll() is not None or _accepts(port), "the single process to listen")
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert get(port, "/echo/one").json()["path"] == "/echo/one"
        assert _ids(proc.pid)["Uid"] == [nobody.pw_uid] * 4
    finally:
        _stop(proc)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _check(path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in env_for_gateway().items() if not (k.startswith("LITEMESH_") and "__" in k)}
    return subprocess.run([sys.executable, "-m", "litemesh", "check", "-c", str(path)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=30)


def test_unknown_user_or_group_is_a_config_error(tmp_path):
    config = tmp_path / "gateway.yaml"
    config.write_text("listeners: [{address: '127.0.0.1:0'}]\n"   # 1
                      "server:\n"                                 # 2
                      "  workers: 1\n"                            # 3
                      "  user: no-such-user-lm7\n"                # 4
                      "  group: no-such-group-lm7\n")             # 5
    result = _check(config)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert f"{config}:4:9: server.user: unknown user 'no-such-user-lm7' (not in the user database)" in lines, lines
    assert f"{config}:5:10: server.group: unknown group 'no-such-group-lm7' (not in the group database)" in lines

    config.write_text("server: {group: root}\n")
    result = _check(config)
    assert result.returncode == 1 and "server.group: only applies with 'user'" in result.stderr, result.stderr

    config.write_text("server: {user: root, group: root}\n")
    assert _check(config).returncode == 0


def _unprivileged(*args: str) -> list[str]:
    """``args`` run as uid 65534 in a user namespace of their own (it may still read root's files)."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1)")
    probe = subprocess.run(["unshare", "--user", "id", "-u"], capture_output=True, text=True, timeout=10)
    if probe.returncode != 0 or probe.stdout.strip() == "0":
        pytest.skip(f"user namespaces unavailable: {probe.stderr.strip()}")
    return ["unshare", "--user", *args]


def test_server_user_needs_root(tmp_path):
    other = next((p for p in pwd.getpwall() if p.pw_uid not in (0, 65534)), None)
    if other is None:
        pytest.skip("no user besides root and nobody")
    port = free_port()
    config = tmp_path / "gateway.yaml"
    config.write_text(f"listeners: [{{address: '127.0.0.1:{port}'}}]\n"
                      f"admin: {{address: '127.0.0.1:0'}}\nserver: {{user: {other.pw_name}}}\n")
    result = subprocess.run(_unprivileged(sys.executable, "-m", "litemesh", "run", "-c", str(config)),
                            cwd=REPO_ROOT, env=env_for_gateway(), capture_output=True, text=True, timeout=30)
    assert result.returncode == 1, result.stderr
    assert (f"litemesh: server.user is {other.pw_name!r}, but litemesh runs as 'nobody' (uid 65534), which "
            "cannot switch users: start it as root") in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_started_as_server_user_needs_no_switch(tmp_path):
    port = free_port()
    config = tmp_path / "gateway.yaml"
    config.write_text(f"listeners: [{{address: '127.0.0.1:{port}'}}]\nadmin: {{address: '127.0.0.1:0'}}\n"
                      "server: {user: nobody, workers: 1}\n"
                      "routes: [{name: hello, paths: ['=/hello'], respond: {status: 200, body: hi}}]\n")
    proc = subprocess.Popen(_unprivileged(sys.executable, "-m", "litemesh", "run", "-c", str(config),
                                          "--pid-file", str(tmp_path / "gw.pid")),
                            cwd=REPO_ROOT, env=env_for_gateway(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait(lambda: proc.poll() is not None or _accepts(port), "the gateway to listen")
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert get(port, "/hello").text == "hi"
    finally:
        _stop(proc)
