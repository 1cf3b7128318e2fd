"""Service targets over real processes (issue 7, point 11): the http:// URL form, and host names
that do not resolve -- 502 JSON at once, one log line per lookup instead of one per request,
warnings from ``litemesh check`` and at ``litemesh run`` start.

No test depends on outside DNS: ``localhost`` (in /etc/hosts) is the name that resolves and
``*.invalid`` (RFC 6761) the one that never does; on this kind of closed network its lookup fails
at once.
"""
from __future__ import annotations

import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.origins import HttpOrigin, pattern_bytes

from .conftest import REPO_ROOT, env_for_gateway, route, service
from .helpers import assert_error_answer, get

pytestmark = pytest.mark.timeout(60)

BAD_HOST = "something.invalid"
#: requests sent to the unresolvable target; all fall inside one resolve interval (10 minutes)
REQUESTS = 25


@pytest.fixture(scope="module")
def origin():  # type: ignore[no-untyped-def]
    with HttpOrigin() as srv:
        yield srv


@pytest.fixture(scope="module")
def gw(module_gateway, origin):  # type: ignore[no-untyped-def]
    return module_gateway({
        "services": [
            service("bad", f"{BAD_HOST}:80", resolve_interval="10m"),
            service("by-name", f"localhost:{origin.port}"),
            service("by-url", f"http://localhost:{origin.port}"),
        ],
        "routes": [route("bad", "/bad", "bad"), route("by-name", "/name", "by-name", strip_prefix=True),
                   route("by-url", "/url", "by-url", strip_prefix=True)],
    })


def _log_lines(gw, pattern: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [line for line in gw.stderr().splitlines() if re.search(pattern, line)]


def _wait_for_log(gw, pattern: str, timeout: float = 20.0) -> list[str]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        lines = _log_lines(gw, pattern)
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_unresolvable_target_gets_502_json_at_once_and_one_log_line(gw) -> None:  # type: ignore[no-untyped-def]
    durations = []
    for _ in range(REQUESTS):
        started = time.monotonic()
        resp = get(gw.port, "/bad", timeout=10)
        durations.append(time.monotonic() - started)
        data = assert_error_answer(resp, 502)
        assert data["error"] == f"upstream host {BAD_HOST!r} does not resolve"
    # "at once": no request waits for a connect timeout (timeouts.connect is 1s here); generous for busy boxes
    assert statistics.median(durations) < 1.0 and max(durations) < 10, durations
    runtime_warning = rf"WARNING litemesh\.upstream\[\d+\]: service 'bad': upstream host '{re.escape(BAD_HOST)}' " \
                      r"does not resolve"
    assert len(_wait_for_log(gw, runtime_warning)) == 1
    # nothing else about it per request: no "upstream ... failed" line either
    assert _log_lines(gw, r"upstream .* failed") == []
    assert len(_log_lines(gw, runtime_warning)) == 1


def test_names_that_resolve_are_proxied(gw, origin) -> None:  # type: ignore[no-untyped-def]
    for prefix in ("/name", "/url"):
        resp = get(gw.port, f"{prefix}/bytes/21", timeout=10)
        assert (resp.status, resp.body) == (200, pattern_bytes(21)), (prefix, resp.status, resp.body[:200])
        headers = {name.lower(): value for name, value in origin.last_request["headers"]}
        assert headers["host"] == f"localhost:{origin.port}"


def test_run_logs_unresolvable_targets_at_start(gw) -> None:  # type: ignore[no-untyped-def]
    config_lines = gw.config_path.read_text().splitlines()
    line = next(i for i, text in enumerate(config_lines, 1) if BAD_HOST in text)
    found = _wait_for_log(gw, r"WARNING litemesh\.config\[")
    assert len(found) == 1, found
    assert f"{gw.config_path}:{line}:" in found[0]
    assert f"services[0].targets[0].address: warning: host {BAD_HOST!r} does not resolve" in found[0]


def _check(path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in env_for_gateway().items() if not (k.startswith("LITEMESH_") and "__" in k)}
    return subprocess.run([sys.executable, "-m", "litemesh", "check", "-c", str(path)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=30)


def test_check_warns_about_unresolvable_targets_and_exits_0(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "listeners: [{address: '127.0.0.1:8080'}]\n"          # 1
        "services:\n"                                           # 2
        "  - name: api\n"                                       # 3
        "    targets:\n"                                        # 4
        "      - localhost:9000\n"                              # 5
        "      - 127.0.0.1:9001\n"                              # 6
        f"      - http://{BAD_HOST}\n"                          # 7
        "  - name: other\n"                                     # 8
        "    targets:\n"                                        # 9
        f"      - address: 'http://{BAD_HOST.upper()}:8080'\n"  # 10
        "routes:\n"                                             # 11
        "  - {name: api, paths: [/api], service: api}\n"        # 12
        "  - {name: other, paths: [/other], service: other}\n"  # 13
    )
    result = _check(config)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{config}: OK (") and "2 warnings" in result.stdout, result.stdout
    warnings = result.stderr.splitlines()
    assert len(warnings) == 2, result.stderr
    assert warnings[0].startswith(f"{config}:7:9: services[0].targets[2].address: warning: host {BAD_HOST!r} "
                                  "does not resolve (")
    assert warnings[1].startswith(f"{config}:10:18: services[1].targets[0].address: warning: host {BAD_HOST!r} "
                                  "does not resolve (")


def test_check_refuses_https_targets_with_file_and_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "gateway.yaml"
    config.write_text("services:\n  - name: api\n    targets: ['https://api.internal']\n")
    result = _check(config)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"{config}:3:15: services[0].targets[0].address: https:// targets are not "
                                     "supported yet: upstream TLS is not implemented")
