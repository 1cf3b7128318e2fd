"""Config inputs that fuzzing found (issue 8, points 6 and 8-11), through the real command line and
a real gateway: ``litemesh check`` answers each with ``file:line:col`` and no traceback, and a
config it accepts is one the gateway compiles and serves."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from .conftest import REPO_ROOT, env_for_gateway, route
from .helpers import get

pytestmark = pytest.mark.timeout(60)

BASE = "listeners: [{address: '127.0.0.1:8080'}]\n"   # line 1
# 7 levels of 8 aliases: a few hundred bytes standing for 2.4 million nodes
ALIAS_BOMB = "a0: &a0 [x,x,x,x,x,x,x,x]\n" + "".join(
    f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 8)}]\n" for i in range(1, 7))


def _check(path, **env: str) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    clean = {k: v for k, v in env_for_gateway().items() if not (k.startswith("LITEMESH_") and "__" in k)}
    return subprocess.run([sys.executable, "-m", "litemesh", "check", "-c", str(path)], cwd=REPO_ROOT,
                          env={**clean, **env}, capture_output=True, text=True, timeout=50)


@pytest.mark.parametrize("text, needle, words", [
    (BASE + "server:\n  workers: !!int x\n", "!!int", "invalid !!int value"),                       # point 8
    (BASE + "server:\n  workers: !!timestamp x\n", "!!timestamp", "invalid !!timestamp value"),
    (BASE + "server:\n  via: é\n  server_header: \x01\n", "\x01", "unacceptable character #x0001"),  # point 10
    (ALIAS_BOMB, "&a6", "alias bomb"),                                                                 # point 9
    (BASE + "server:\n  request_id_header: Transfer-Encoding\n", "Transfer", "request_id_header"),     # point 6
    (BASE + "routes:\n  - {name: r, paths: [/a], respond: {status: 200, headers: {X-A: '€'}}}\n", "'€'",
     "Latin-1"),                                                                                       # point 11
    (BASE + "services:\n  - {name: s, targets: ['127.0.0.1:9'], host_header: é}\n", "é}", "Host value"),
], ids=["int-tag", "timestamp-tag", "control-char", "alias-bomb", "request-id-te", "euro-header", "host-header"])
def test_check_reports_each_finding_at_its_place(tmp_path, text, needle, words):
    config = tmp_path / "gateway.yaml"
    config.write_bytes(text.encode("utf-8"))
    line = next(n for n, row in enumerate(text.splitlines(), 1) if needle in row)
    column = text.splitlines()[line - 1].index(needle) + 1
    started = time.monotonic()
    result = _check(config)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1, (result.stdout, result.stderr)
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"{config}:{line}:{column}: ") and words in first, result.stderr
    assert time.monotonic() - started < 40   # the alias bomb took ~10 s of CPU before the fix


def test_check_reports_an_unreadable_tagged_env_value_against_the_variable(tmp_path):
    config = tmp_path / "gateway.yaml"
    config.write_text(BASE)
    result = _check(config, LITEMESH_SERVER__WORKERS="!!int x")
    assert "Traceback" not in result.stderr and result.returncode == 1, result.stderr
    assert result.stderr.startswith("<env LITEMESH_SERVER__WORKERS>: server.workers: "), result.stderr


def test_what_check_accepts_the_gateway_serves(gateway, tmp_path):
    """Non-ASCII paths and Latin-1 header values passed `check` but crashed the workers' snapshot
    compilation; now the path is routed in the spelling requests arrive in."""
    config = {"routes": [
        route("accent", "/é/{id}", respond={"status": 200, "body": "accent",
                                           "headers": {"X-Name": "café"}, "content_type": "text/plain"}),
        route("escaped", "=/caf%c3%a9", respond={"status": 200, "body": "escaped"}),
    ]}
    gw = gateway(config)   # fails to start if a worker cannot compile the config
    result = _check(gw.config_path)
    assert result.returncode == 0, result.stderr
    for path in ("/%c3%a9/7", "/%C3%A9/7"):
        resp = get(gw.port, path)
        assert (resp.status, resp.body, resp.header("X-Name")) == (200, b"accent", "café"), resp
    assert get(gw.port, "/caf%C3%A9").body == b"escaped"
