"""The command line: check, schema, version, and the run command's signals (drain, reload)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from litemesh.config import EXAMPLE_CONFIG_PATH
from tests.support.origins import HttpOrigin

from .conftest import REPO_ROOT, env_for_gateway, route, service
from .helpers import connect, get

pytestmark = pytest.mark.timeout(30)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "litemesh", *args], cwd=REPO_ROOT, env=env or env_for_gateway(),
                          capture_output=True, text=True, timeout=20)


def _env_without_overrides() -> dict[str, str]:
    # LITEMESH_<SECTION>__<FIELD> variables of the caller would change what `check` reports
    return {k: v for k, v in env_for_gateway().items() if not (k.startswith("LITEMESH_") and "__" in k)}


@pytest.fixture(scope="module")
def origin():
    with HttpOrigin() as srv:
        yield srv


def test_check_example_config():
    result = _cli("check", "-c", str(EXAMPLE_CONFIG_PATH), env=_env_without_overrides())
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_check_broken_config(tmp_path):
    config = tmp_path / "broken.yaml"
    config.write_text(
        "listeners: [{address: '127.0.0.1:8080'}]\n"       # 1
        "services:\n"                                        # 2
        "  - name: users\n"                                  # 3
        "    targets: ['127.0.0.1:9101']\n"                  # 4
        "routes:\n"                                          # 5
        "  - name: ok\n"                                     # 6
        "    paths: [/a]\n"                                  # 7
        "    service: users\n"                               # 8
        "  - name: bad\n"                                    # 9
        "    paths: [/b]\n"                                  # 10
        "    service: billing\n"                             # 11
        "limits:\n"                                          # 12
        "  max_body_size: lots\n"                            # 13
    )
    result = _cli("check", "-c", str(config), env=_env_without_overrides())
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    service_lines = [l for l in lines if "routes[1].service" in l]
    assert service_lines, result.stderr
    assert service_lines[0].startswith(f"{config}:11:"), service_lines
    assert "billing" in service_lines[0]
    size_lines = [l for l in lines if "limits.max_body_size" in l]
    assert size_lines and size_lines[0].startswith(f"{config}:13:"), result.stderr


def test_check_missing_file(tmp_path):
    result = _cli("check", "-c", str(tmp_path / "nope.yaml"), env=_env_without_overrides())
    assert result.returncode == 1
    assert "nope.yaml" in result.stderr


def test_schema():
    result = _cli("schema")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert '"properties"' in result.stdout
    top = schema
    if "$ref" in top:  # "#/$defs/GatewayConfig"
        top = schema["$defs"][top["$ref"].rsplit("/", 1)[1]]
    for section in ("listeners", "services", "routes", "limits", "timeouts", "server"):
        assert section in top["properties"]


def test_version_verbose():
    result = _cli("version", "--verbose")
    assert result.returncode == 0, result.stderr
    pure = os.environ.get("LITEMESH_NO_EXTENSIONS", "").strip().lower() not in ("", "0", "false", "no")
    expected = "trie: pure Python" if pure else "trie: compiled"
    assert expected in result.stdout, result.stdout
    assert result.stdout.startswith("litemesh ")


def test_run_needs_a_config():
    result = _cli("run")
    assert result.returncode != 0
    assert "-c FILE" in result.stderr


def test_quick_mode(origin):
    from tests.support.origins import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "litemesh", "run", "--listen", f"127.0.0.1:{port}",
                             "--upstream", origin.address], cwd=REPO_ROOT, env=env_for_gateway(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "quick gateway did not start"
                time.sleep(0.05)
        assert get(port, "/echo?quick=1").json()["path"] == "/echo?quick=1"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(5) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)


# --------------------------------------------------------------------------------------------
# signals


def _config(origin, extra_routes=()):  # type: ignore[no-untyped-def]
    return {
        "timeouts": {"drain": "4s"},
        "services": [service("main", origin, timeouts={"read": "5s"})],
        "routes": [route("main", ["/slow", "/echo", "/bytes"], "main"), *extra_routes],
    }


def _refused_soon(port: int, timeout: float = 5.0) -> bool:
    """Whether new connections to ``port`` are refused within ``timeout`` (the listener closed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return True
        time.sleep(0.02)
    return False


def test_sigterm_drains_in_flight_request(gateway, origin):
    gw = gateway(_config(origin))
    idle = connect(gw.port)  # an idle keep-alive connection is closed at once
    assert idle.request("GET", "/bytes/1").status == 200
    with connect(gw.port, timeout=8) as conn:
        conn.send(b"GET /slow/1500?m=cli-drain HTTP/1.1\r\nHost: a\r\n\r\n")
        assert origin.wait_for_target("cli-drain")  # the request is in flight at the origin
        started = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        assert idle.is_closed(5), "idle connection not closed by the drain"
        idle.close()
        assert _refused_soon(gw.port), "still accepting connections while draining"
        resp = conn.recv_response()
        assert (resp.status, resp.body) == (200, b"slow\n")
        assert "close" in resp.header("connection", "").lower()
        assert conn.is_closed(2)
    code = gw.proc.wait(6)
    assert code == 0, gw.stderr()
    assert time.monotonic() - started < 4 + 1.5


def test_sigterm_drain_timeout_is_bounded(gateway, origin):
    config = _config(origin)
    config["timeouts"] = {"drain": "0.5s"}
    gw = gateway(config)
    with connect(gw.port, timeout=8) as conn:
        conn.send(b"GET /slow/4000?m=cli-drain-timeout HTTP/1.1\r\nHost: a\r\n\r\n")
        assert origin.wait_for_target("cli-drain-timeout")
        started = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        code = gw.proc.wait(5)
        assert time.monotonic() - started < 3.5  # the 0.5 s drain timeout, not the 4 s request
        assert code == 0, gw.stderr()
        assert conn.is_closed(1)


def test_sighup_reload(gateway, origin):
    gw = gateway(_config(origin))
    assert get(gw.port, "/new").status == 404
    with connect(gw.port) as kept:  # a connection opened before the reload
        assert kept.request("GET", "/bytes/1").status == 200
        new_route = route("new", "/new", respond={"status": 200, "body": "new route"})
        gw.reload(_config(origin, [new_route]))
        deadline = time.monotonic() + 5
        while get(gw.port, "/new").status != 200:
            assert time.monotonic() < deadline, f"reload not applied:\n{gw.stderr()}"
            time.sleep(0.05)
        assert get(gw.port, "/new").text == "new route"
        assert kept.request("GET", "/new").text == "new route"  # between requests, on old connections too
    assert get(gw.port, "/echo?x").json()["path"] == "/echo?x"

    # an invalid config is rejected and the running one keeps serving
    gw.reload("services: [{name: main, targets: ['127.0.0.1:1']}]\nroutes: [{name: x, service: nope}]\n")
    deadline = time.monotonic() + 5
    while "reload rejected" not in gw.stderr():
        assert time.monotonic() < deadline, f"no rejection logged:\n{gw.stderr()}"
        time.sleep(0.05)
    assert gw.alive()
    assert get(gw.port, "/new").text == "new route"
    assert get(gw.port, "/echo?after").json()["path"] == "/echo?after"
    assert gw.stop() == 0
