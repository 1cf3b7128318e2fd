"""Packaging basics (issue 7, point 14): the LICENSE, ``litemesh --version``, help text for every
option of every command, correct plurals wherever a count is printed, and the deploy examples."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import tomllib

import pytest

from .conftest import REPO_ROOT, env_for_gateway, route

pytestmark = pytest.mark.timeout(60)


def _cli(*args: str) -> subprocess.CompletedProcess:
    # LITEMESH_<SECTION>__<FIELD> variables of the caller would change what `check` reports
    env = {k: v for k, v in env_for_gateway().items() if not (k.startswith("LITEMESH_") and "__" in k)}
    env["COLUMNS"] = "80"  # the help layout parsed below is click's at a fixed width
    return subprocess.run([sys.executable, "-m", "litemesh", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=30)


def test_license_file_matches_pyproject():
    license_id = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["license"]
    assert license_id == "Apache-2.0"
    text = (REPO_ROOT / "LICENSE").read_text()
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    # the full text, not a pointer to it: all nine sections and the appendix
    for number, title in enumerate(["Definitions", "Grant of Copyright License", "Grant of Patent License",
                                    "Redistribution", "Submission of Contributions", "Trademarks",
                                    "Disclaimer of Warranty", "Limitation of Liability",
                                    "Accepting Warranty or Additional Liability"], start=1):
        assert f"   {number}. {title}." in text, title
    assert "END OF TERMS AND CONDITIONS" in text
    assert "APPENDIX: How to apply the Apache License to your work." in text


def test_version_option():
    from litemesh._version import __version__

    result = _cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"litemesh {__version__}\n"
    assert _cli("version").stdout == result.stdout  # the command and the option agree


def _commands() -> list[str]:
    result = _cli("-h")
    assert result.returncode == 0, result.stderr
    section = result.stdout.split("\nCommands:\n", 1)[1]
    return [line.split()[0] for line in section.splitlines() if line.startswith("  ") and line.strip()]


def _options_without_help(help_text: str) -> list[str]:
    """Entries of click's "Options:" list that have no description: an entry starts with two spaces
    and a dash; its description follows on the same line after a gap, or on deeper-indented lines."""
    section = help_text.split("\nOptions:\n", 1)[1]
    entries: list[list[str]] = []
    for line in section.splitlines():
        if re.match(r"  -", line):
            entries.append([line])
        elif line.startswith("   ") and entries:
            entries[-1].append(line)
        elif line.strip():
            break  # the next section
    missing = []
    for first, *rest in entries:
        spec, gap, description = first.strip().partition("  ")
        if not (gap and description.strip()) and not rest:
            missing.append(spec)
    return missing


def test_every_option_of_every_command_has_help():
    commands = _commands()
    assert {"run", "reload", "stop", "check", "schema", "version", "demo"} <= set(commands), commands
    assert _options_without_help(_cli("-h").stdout) == []
    for command in commands:
        result = _cli(command, "-h")
        assert result.returncode == 0, (command, result.stderr)
        assert _options_without_help(result.stdout) == [], (command, result.stdout)


def test_check_prints_counts_with_plurals(tmp_path):
    one = tmp_path / "one.yaml"
    one.write_text("listeners: [{address: '127.0.0.1:0'}]\n"
                   "services: [{name: s, targets: ['127.0.0.1:9']}]\n"
                   "routes: [{name: r, paths: [/], service: s}]\n")
    result = _cli("check", "-c", str(one))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{one}: OK (1 listener, 1 service, 1 route)\n"

    two = tmp_path / "two.yaml"
    two.write_text("listeners: [{name: a, address: '127.0.0.1:0'}, {name: b, address: '127.0.0.1:0'}]\n"
                   "services: [{name: s, targets: ['127.0.0.1:9']}, {name: t, targets: ['127.0.0.1:10']}]\n"
                   "routes: [{name: r, paths: [/], service: s}, {name: q, paths: [/q], service: t}]\n")
    result = _cli("check", "-c", str(two))
    assert result.stdout == f"{two}: OK (2 listeners, 2 services, 2 routes)\n", result.stderr

    none = tmp_path / "none.yaml"
    none.write_text("listeners: [{address: '127.0.0.1:0'}]\n")
    assert _cli("check", "-c", str(none)).stdout == f"{none}: OK (1 listener, 0 services, 0 routes)\n"


def _wait_for_log(gw, pattern: str, timeout: float = 20.0) -> re.Match:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        match = re.search(pattern, gw.stderr(), re.MULTILINE)
        if match:
            return match
        assert time.monotonic() < deadline, f"no line matching {pattern!r}:\n{gw.stderr()}"
        time.sleep(0.05)


def test_banner_and_master_log_use_plurals(gateway):
    gw = gateway({"routes": [route("only", "/", respond={"status": 200, "body": "ok"})]}, workers=1)
    _wait_for_log(gw, rf"listening on http://127\.0\.0\.1:{gw.port} \(1 route, master pid {gw.pid}, 1 worker\)$")
    answer = gw.admin("POST", "/reload")
    assert answer.status == 200, answer.body
    _wait_for_log(gw, r"generation 2 live in 1 worker after \d+ ms$")


def test_banner_counts_several(gateway):
    routes = [route(f"r{i}", f"/r{i}", respond={"status": 200}) for i in range(3)]
    gw = gateway({"routes": routes}, workers=2)
    _wait_for_log(gw, rf"listening on http://127\.0\.0\.1:{gw.port} \(3 routes, master pid {gw.pid}, 2 workers\)$")


# --------------------------------------------------------------------------------------------
# deploy/: the sample config, the systemd unit and the Dockerfile


def test_deploy_sample_config_is_valid():
    result = _cli("check", "-c", str(REPO_ROOT / "deploy" / "gateway.yaml"))
    assert result.returncode == 0, result.stderr
    assert "OK (1 listener," in result.stdout
    from litemesh.config import load_config

    config = load_config(REPO_ROOT / "deploy" / "gateway.yaml", env={})
    assert config.listeners[0].host == "0.0.0.0"  # reachable from outside a container
    assert (config.admin.host, config.admin.port) == ("127.0.0.1", 9901)  # what the HEALTHCHECK asks


def _unit_settings(text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def test_systemd_unit(tmp_path):
    text = (REPO_ROOT / "deploy" / "litemesh.service").read_text()
    unit = _unit_settings(text)
    assert unit["ExecStart"][0].startswith("/opt/litemesh/bin/litemesh run -c /etc/litemesh/gateway.yaml")
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["KillSignal"] == ["SIGTERM"] and unit["KillMode"] == ["mixed"]
    assert unit["NoNewPrivileges"] == ["yes"] and unit["ProtectSystem"] == ["strict"]
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("no systemd-analyze to verify the unit with")
    # verify checks that the commands exist: point them at one that does
    copy = tmp_path / "litemesh.service"
    copy.write_text(text.replace("/opt/litemesh/bin/litemesh", "/bin/true"))
    result = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "litemesh.service" not in result.stdout + result.stderr, result


def test_dockerfile():
    text = (REPO_ROOT / "Dockerfile").read_text()
    lines = [line.strip() for line in text.replace("\\\n", " ").splitlines()]
    froms = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert froms and all(image.startswith("python:") and image.endswith("-slim") for image in froms), froms
    for line in lines:
        if line.startswith("COPY ") and "--from=" not in line:
            for source in line.split()[1:-1]:
                assert (REPO_ROOT / source).exists(), source
    user = next(line.split()[1] for line in lines if line.startswith("USER "))
    assert user not in ("root", "0")
    assert 'ENTRYPOINT ["litemesh"]' in lines and 'CMD ["run", "-c", "/etc/litemesh/gateway.yaml"]' in lines
    assert "EXPOSE 8080" in lines
    assert any(line.startswith("HEALTHCHECK ") and "LITEMESH_HEALTHCHECK_URL" in line for line in lines)
    assert "LITEMESH_HEALTHCHECK_URL=http://127.0.0.1:9901/ready" in text
    ignored = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[ignored.index("*") + 1:].count("!deploy/gateway.yaml") == 1
