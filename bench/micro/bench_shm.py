"""Micro-benchmarks of the shared-memory metrics, pure Python vs compiled.

    python -m pytest bench/micro/bench_shm.py --benchmark-only

Per request: ``WorkerMetrics.request()`` and an ``inflight_begin``/``inflight_end`` pair. Per
scrape: ``Segment.totals()`` and ``prometheus.render()`` of 64 workers x 10,000 routes with every
route record written in every worker (the worst case: no holes to skip) and all 10,000 routes
named. The "c" cases are skipped if the extension was not built or LITEMESH_NO_EXTENSIONS is set.
"""
from __future__ import annotations

from array import array

import pytest

from litemesh.shm import Segment, view
from litemesh.shm.layout import ROUTE_WORDS, WORD
from litemesh.shm.prometheus import render

IMPLS = {"py": view.PY, "c": view.C}
WORKERS, ROUTES, TARGETS = 64, 10_000, 1_024


def _impl(name: str):
    module = IMPLS[name]
    if module is None:
        pytest.skip("compiled shm view not available (not built, or LITEMESH_NO_EXTENSIONS set)")
    return module


@pytest.fixture(scope="module")
def full_segment():
    """64 x 10,000 with every slot fully written (copied from one synthetic slot image)."""
    seg = Segment.create(WORKERS, ROUTES, TARGETS)
    layout = seg.layout
    image = array("Q", [0] * layout.slot_words)
    for word in range(layout.routes_word, layout.slot_words):
        image[word] = (word % ROUTE_WORDS) + 1
    data = image.tobytes()
    for index in range(WORKERS):
        offset = layout.slot_offset(index)
        seg.mapping[offset:offset + len(data)] = data
    yield seg
    seg.close()


@pytest.mark.parametrize("name", ["py", "c"])
def test_request(benchmark, name):
    module = _impl(name)
    with Segment.create(4, 1_000, 64) as seg:
        metrics = module.WorkerMetrics(seg.mapping, seg.fd, seg.layout, 1)
        benchmark.group = "WorkerMetrics.request()"
        benchmark(metrics.request, 517, 200, 0.0042, 512, 4096)
        metrics.release()


@pytest.mark.parametrize("name", ["py", "c"])
def test_inflight_pair(benchmark, name):
    module = _impl(name)
    with Segment.create(4, 16, 64) as seg:
        metrics = module.WorkerMetrics(seg.mapping, seg.fd, seg.layout, 1)

        def pair():
            metrics.inflight_begin(17)
            metrics.inflight_end(17)

        benchmark.group = "inflight_begin + inflight_end"
        benchmark(pair)
        metrics.release()


def _scrape_segment(full_segment, name):
    module = _impl(name)
    full_segment._impl = module  # benchmark both twins on one segment (normally chosen once, by view.impl)
    return full_segment


@pytest.mark.parametrize("name", ["py", "c"])
def test_totals_64x10k(benchmark, full_segment, name):
    seg = _scrape_segment(full_segment, name)
    benchmark.group = "totals(), 64 workers x 10,000 routes"
    totals = benchmark.pedantic(seg.totals, rounds=5 if name == "py" else 20, iterations=1)
    assert totals.route(ROUTES - 1).bytes_out == WORKERS * 7
    assert len(totals.route_words) * WORD == ROUTES * ROUTE_WORDS * WORD


@pytest.mark.parametrize("name", ["py", "c"])
def test_render_64x10k(benchmark, full_segment, name):
    seg = _scrape_segment(full_segment, name)
    route_names = {slot: f"route-{slot}" for slot in range(1, ROUTES)}
    target_names = {slot: f"svc{slot % 40}/10.0.{slot // 250}.{slot % 250}:8080" for slot in range(1, TARGETS)}
    benchmark.group = "render(), 64 workers x 10,000 routes"
    text = benchmark.pedantic(render, args=(seg, route_names, target_names, {"litemesh_config_generation": 3}),
                              rounds=5 if name == "py" else 20, iterations=1)
    assert f'litemesh_requests_total{{route="route-9999",code_class="5xx"}} {WORKERS * 5}' in text
