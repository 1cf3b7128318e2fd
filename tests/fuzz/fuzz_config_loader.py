"""Fuzz target: the config loader, and the snapshot compiler behind it (issue 8, points 8-11).

The input is a whole ``gateway.yaml``, decoded leniently (invalid UTF-8 becomes U+FFFD, as no file
the loader reads can hold it).  A first line ``#env NAME=VALUE`` (a YAML comment, so the rest stays
a document) also sets that one environment variable, e.g. ``#env LITEMESH_SERVER__WORKERS=!!int x``;
otherwise the environment is empty.

Invariants (anything else is a finding):

1. ``load_config_text`` returns a ``GatewayConfig`` or raises ``ConfigError``;
2. every issue of that error has a line and a column, except those of environment variables;
3. bounded time: one input takes less than ``CPU_SECONDS`` of CPU (an alias bomb of 300 bytes took
   10 s); CPU time, not wall-clock, so a busy machine does not fail it;
4. what the loader accepts compiles: ``compile_snapshot`` builds it (it opens no socket).

    python tests/fuzz/fuzz_config_loader.py [libFuzzer options] CORPUS...   (or tests/fuzz/run.py)
"""
from __future__ import annotations

import asyncio
import contextlib
import time

if __name__ == "__main__":
    import atheris

    _instrumented = atheris.instrument_imports
else:   # imported by test_replay.py: atheris need not be installed
    _instrumented = contextlib.nullcontext

with _instrumented():
    from litemesh.config import ConfigError, GatewayConfig, load_config_text
    from litemesh.proxy.pool import PoolRegistry
    from litemesh.proxy.snapshot import compile_snapshot

#: CPU seconds one input may take (a 4 KB document loads in a few milliseconds)
CPU_SECONDS = 2.0
ENV_LINE = "#env "

_loop: asyncio.AbstractEventLoop | None = None


def _environment(text: str) -> dict[str, str]:
    """The one variable a first line ``#env NAME=VALUE`` sets (none without it)."""
    if not text.startswith(ENV_LINE):
        return {}
    name, _, value = text[len(ENV_LINE):].partition("\n")[0].partition("=")
    return {name: value}


def _compile(config: GatewayConfig) -> None:
    global _loop
    if _loop is None:   # one loop for the run: compiling only hands it to the pools, never runs it
        _loop = asyncio.new_event_loop()
    compile_snapshot(config, PoolRegistry(_loop))


def check(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    env = _environment(text)
    started = time.process_time()
    try:
        config = load_config_text(text, "fuzz.yaml", env=env)
    except ConfigError as exc:
        assert exc.issues, "a ConfigError without issues"
        for issue in exc.issues:
            assert issue.file.startswith("<env ") or (issue.line is not None and issue.column is not None), \
                f"issue without a position: {issue}"
        config = None
    if config is not None:
        _compile(config)
    spent = time.process_time() - started
    assert spent < CPU_SECONDS, f"{spent:.2f} s of CPU for {len(data)} bytes"


if __name__ == "__main__":
    from tests.fuzz.targets import main

    main(check)
