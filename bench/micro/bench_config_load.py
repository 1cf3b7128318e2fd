"""Load time of a 10,000-route gateway.yaml: YAML parse + validation, then snapshot compilation
(the route trie and filter chains a worker swaps in).  Target: under a second together.

    python -m pytest bench/micro/bench_config_load.py --benchmark-only
"""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
import yaml

from litemesh.config import load_config
from litemesh.proxy.pool import PoolRegistry
from litemesh.proxy.snapshot import compile_snapshot

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from run import extra_routes  # noqa: E402  (the same realistic table the wrk benchmark loads)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    routes = [dict(r, service="backend") for r in extra_routes(9_999)]
    routes.append({"name": "catch-all", "paths": ["/"], "service": "backend"})
    config = {"listeners": [{"address": "127.0.0.1:8080"}],
              "services": [{"name": "backend", "targets": ["127.0.0.1:9000"]}], "routes": routes}
    path = tmp_path_factory.mktemp("config") / "routes10k.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_load_10k_routes(benchmark, config_file: Path) -> None:
    config = benchmark.pedantic(load_config, args=(config_file,), rounds=3, iterations=1)
    assert len(config.routes) == 10_000


def test_compile_10k_routes(benchmark, config_file: Path) -> None:
    config = load_config(config_file)
    pools = PoolRegistry(asyncio.new_event_loop())
    snapshot = benchmark.pedantic(compile_snapshot, args=(config, pools), rounds=3, iterations=1)
    assert snapshot is not None
