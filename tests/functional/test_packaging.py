"""Packaging basics (issue 7, point 14): the LICENSE, ``litemesh --version``, help text for every
option of every command, correct plurals wherever a count is printed, and the deploy examples."""
from __future__ import annotations

import re
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
