"""Shared-memory segment: layout, both writer twins, real child processes, slot names, /metrics.

Tests taking ``impl`` run once per twin ("py" = litemesh.shm._view_py, "c" = the compiled
litemesh._speedups.shm). With LITEMESH_NO_EXTENSIONS set only "py" runs; otherwise a missing build
FAILS the "c" cases. Child processes inherit the environment, so they use the same twin.
"""
from __future__ import annotations

import math
import os
import random
import re
import struct
import subprocess
import sys
import textwrap
from array import array

import pytest

from litemesh import _ext
from litemesh.shm import Segment, SlotNames, layout as L, view
from litemesh.shm.prometheus import render

IMPLS = ["py"] if _ext.NO_EXTENSIONS else ["py", "c"]


@pytest.fixture(params=IMPLS)
def impl(request):
    """The view module under test."""
    if request.param == "c" and view.C is None:
        pytest.fail("extension not built: run `python setup.py build_ext --inplace` (litemesh._speedups.shm)")
    return view.PY if request.param == "py" else view.C


@pytest.fixture
def segment():
    seg = Segment.create(workers=3, routes=5, targets=4)
    yield seg
    seg.close()


@pytest.fixture
def writer(segment):
    """writer(module, index): a view of ``module`` on ``segment``, released before the segment closes."""
    made = []

    def make(module, index):
        made.append(module.WorkerMetrics(segment.mapping, segment.fd, segment.layout, index))
        return made[-1]

    yield make
    for metrics in made:
        metrics.release()


def both_impls():
    if _ext.NO_EXTENSIONS:
        pytest.skip("compiled twin disabled by LITEMESH_NO_EXTENSIONS")
    if view.C is None:
        pytest.fail("extension not built: run `python setup.py build_ext --inplace` (litemesh._speedups.shm)")
    return view.PY, view.C


def snapshot(seg: Segment) -> bytes:
    """The whole segment, read with pread (holes read as zeros without being allocated)."""
    return os.pread(seg.fd, seg.layout.size, 0)


def decode(seg: Segment, worker: int) -> dict[str, int]:
    data = snapshot(seg)
    return {name: struct.unpack_from("=q" if signed else "=Q", data, offset)[0]
            for name, offset, signed in seg.layout.fields(worker)}


def shared_inflight(seg: Segment) -> list[int]:
    return [seg.inflight(t) for t in range(seg.layout.targets)]


# --- layout -------------------------------------------------------------------------------------

def test_layout_offsets_are_aligned_and_disjoint():
    layout = L.Layout(workers=3, routes=7, targets=5)
    assert layout.slots_offset % L.PAGE == 0 and layout.slot_size % L.PAGE == 0
    assert layout.inflight_offset >= L.HEADER_SIZE
    assert layout.slots_offset >= layout.inflight_offset + layout.targets * L.WORD
    assert (layout.routes_word * L.WORD) % L.LINE == 0
    assert layout.size == layout.slots_offset + 3 * layout.slot_size
    seen: set[int] = set()
    for worker in range(layout.workers):
        lo, hi = layout.slot_offset(worker), layout.slot_offset(worker) + layout.slot_size
        for name, offset, _signed in layout.fields(worker):
            assert offset % L.WORD == 0 and lo <= offset < hi, name
            assert offset not in seen, name
            seen.add(offset)
    per_slot = 4 + L.BUCKETS + layout.targets + layout.routes * 7
    assert len(seen) == layout.workers * per_slot


def test_layout_header_roundtrip_and_rejections():
    layout = L.Layout(workers=2, routes=3, targets=4)
    assert L.Layout.from_header(layout.header()) == layout
    words = list(layout.header())
    for index, value, message in ((L.H_MAGIC, 0, "magic"), (L.H_VERSION, L.VERSION + 1, "version"),
                                  (L.H_SIZE, layout.size + 1, "sizes")):
        bad = list(words)
        bad[index] = value
        with pytest.raises(ValueError, match=message):
            L.Layout.from_header(tuple(bad))
    for bad_caps in ((0, 1, 1), (1, 0, 1), (1, 1, 0), (L.MAX_CAPACITY + 1, 1, 1)):
        with pytest.raises(ValueError):
            L.Layout(*bad_caps)


def test_attach_rejects_foreign_fds():
    fd = os.memfd_create("not-a-segment")
    try:
        os.write(fd, b"\x00" * 4096)
        with pytest.raises(ValueError, match="magic"):
            Segment.attach(fd)
    finally:
        os.close(fd)
    with Segment.create(1, 1, 1) as seg:
        fd = os.dup(seg.fd)
        other = Segment.attach(fd)  # owns fd from here
        assert other.layout == seg.layout
        other.close()


def test_segment_is_sealed_against_resizing(segment):
    with pytest.raises(OSError):
        os.ftruncate(segment.fd, 4096)


# --- the two twins write the same bytes ---------------------------------------------------------

def random_ops(rng: random.Random, layout: L.Layout, n: int) -> list[tuple]:
    ops: list[tuple] = []
    for _ in range(n):
        kind = rng.choice(["request"] * 6 + ["open", "close", "begin", "end"])
        if kind == "request":
            route = rng.choice([rng.randrange(layout.routes)] * 4 + [-1, layout.routes, 2 ** 70, -2 ** 70])
            status = rng.choice([101, 200, 204, 301, 404, 499, 500, 503, 0, 99, 600, 2 ** 80, -7])
            duration = rng.choice([rng.uniform(0, 0.02), rng.uniform(0, 20), 0.0, 0.0005, 1.0, 10.0,
                                   1e-7, -1.0, math.nan, math.inf, 0.0000015, 0.0025])
            size_in = rng.choice([0, rng.randrange(1 << 20), -5, 2 ** 80])
            size_out = rng.choice([0, rng.randrange(1 << 30), -5, 2 ** 63])
            ops.append((kind, route, status, duration, size_in, size_out))
        elif kind in ("begin", "end"):
            ops.append((kind, rng.choice([rng.randrange(layout.targets)] * 4 + [-1, layout.targets, 2 ** 70])))
        else:
            ops.append((kind,))
    return ops


def apply(metrics, op: tuple) -> None:
    kind, *args = op
    if kind == "request":
        metrics.request(*args)
    elif kind == "open":
        metrics.connection_opened()
    elif kind == "close":
        metrics.connection_closed()
    elif kind == "begin":
        metrics.inflight_begin(*args)
    else:
        metrics.inflight_end(*args)


def model(layout: L.Layout, ops: list[tuple]) -> tuple[dict[str, int], list[int]]:
    """Expected slot fields (by layout.fields name) and shared counters, from the documented rules."""
    fields: dict[str, int] = {}
    shared = [0] * layout.targets

    def bump(name: str, delta: int) -> None:
        fields[name] = fields.get(name, 0) + delta

    for kind, *args in ops:
        if kind == "request":
            route, status, duration, size_in, size_out = args
            route = route if 0 <= route < layout.routes else 0
            cls = status // 100 - 1 if 100 <= status < 600 else 4
            duration = duration if duration >= 0 else 0.0
            bump(f"route[{route}].{L.CLASSES[cls]}", 1)
            bump(f"route[{route}].bytes_in", min(max(size_in, 0), 2 ** 63 - 1))
            bump(f"route[{route}].bytes_out", min(max(size_out, 0), 2 ** 63 - 1))
            bucket = next((i for i, bound in enumerate(L.BOUNDS) if duration <= bound), len(L.BOUNDS))
            bump(f"bucket[{bucket}]", 1)
            bump("duration_sum_us", round(min(duration * 1e6, 2.0 ** 62)))
            bump("duration_count", 1)
        elif kind == "open":
            bump("active", 1)
            bump("accepted", 1)
        elif kind == "close":
            bump("active", -1)
        elif 0 <= args[0] < layout.targets:
            delta = 1 if kind == "begin" else -1
            bump(f"own_inflight[{args[0]}]", delta)
            shared[args[0]] += delta
    wrapped = {name: value % 2 ** 64 if not name.startswith(("active", "own")) else value
               for name, value in fields.items()}
    return wrapped, shared


def check_slot(seg: Segment, worker: int, expected: dict[str, int]) -> None:
    actual = decode(seg, worker)
    mismatches = {name: (value, expected.get(name, 0)) for name, value in actual.items()
                  if value != expected.get(name, 0)}
    assert not mismatches, mismatches
    assert not set(expected) - set(actual)


def test_every_field_matches_the_documented_rules(impl, segment, writer):
    ops = random_ops(random.Random(7), segment.layout, 3000)
    metrics = writer(impl, 1)
    for op in ops:
        apply(metrics, op)
    expected, shared = model(segment.layout, ops)
    check_slot(segment, 1, expected)
    check_slot(segment, 0, {})
    check_slot(segment, 2, {})
    assert shared_inflight(segment) == shared


def test_compiled_and_pure_write_identical_bytes():
    py, c = both_impls()
    layout_args = dict(workers=2, routes=6, targets=3)
    ops = random_ops(random.Random(11), L.Layout(**layout_args), 5000)
    images = []
    for module in (py, c):
        with Segment.create(**layout_args) as seg:
            metrics = module.WorkerMetrics(seg.mapping, seg.fd, seg.layout, 1)
            for op in ops:
                apply(metrics, op)
            metrics.release()
            images.append(snapshot(seg))
    assert images[0] == images[1]


def test_interleaved_twins_on_one_slot_and_cross_reads(segment, writer):
    py, c = both_impls()
    ops = random_ops(random.Random(3), segment.layout, 4000)
    writers = [writer(module, 2) for module in (py, c)]
    for i, op in enumerate(ops):
        apply(writers[i % 2], op)
    expected, shared = model(segment.layout, ops)
    check_slot(segment, 2, expected)
    for metrics in writers:  # each twin reads what both wrote
        assert [metrics.inflight(t) for t in range(segment.layout.targets)] == shared


def test_accumulate_twins_agree_and_wrap():
    py, c = both_impls()
    rng = random.Random(5)
    with Segment.create(2, 40, 2) as seg:
        words = seg.layout.slot_words
        data = [rng.choice([0, 1, rng.randrange(2 ** 64), 2 ** 64 - 1]) for _ in range(words)]
        off = seg.layout.slot_offset(1)
        seg.mapping[off:off + words * 8] = array("Q", data).tobytes()
        start = array("Q", [rng.randrange(2 ** 64) for _ in range(words)])
        results = []
        for module in (py, c):
            acc = array("Q", start)
            module.accumulate(seg.mapping, off, acc, 0, words)
            results.append(acc)
        assert results[0] == results[1] == array("Q", [(a + b) % 2 ** 64 for a, b in zip(start, data)])
        for module in (py, c):
            with pytest.raises(ValueError):
                module.accumulate(seg.mapping, off + 4, array("Q", [0] * 4), 0, 4)  # unaligned
            with pytest.raises(ValueError):
                module.accumulate(seg.mapping, seg.layout.size - 8, array("Q", [0] * 4), 0, 4)  # past the end
            with pytest.raises(ValueError):
                module.accumulate(seg.mapping, off, array("Q", [0] * 4), 2, 4)  # past the accumulator
            with pytest.raises(ValueError):
                module.atomic_add(seg.mapping, seg.fd, seg.layout.size, 1)


# --- never crash the data plane -----------------------------------------------------------------

def test_out_of_range_values_do_not_raise(impl, segment, writer):
    metrics = writer(impl, 0)
    for route in (-1, 5, 10 ** 6, 2 ** 63, 2 ** 100, -2 ** 100):
        metrics.request(route, 200, 0.001, 1, 1)
    for status in (0, 99, 600, 999, -1, 2 ** 100, -2 ** 100):
        metrics.request(1, status, 0.001, 1, 1)
    for duration in (-1.0, math.nan, math.inf, -math.inf, 1e300):
        metrics.request(1, 200, duration, 0, 0)
    for size in (-1, 2 ** 63, 2 ** 200, -2 ** 200):
        metrics.request(1, 200, 0.0, size, size)
    for target in (-1, 4, 2 ** 63, 2 ** 100, -2 ** 100):
        metrics.inflight_begin(target)
        metrics.inflight_end(target)
        assert metrics.inflight(target) == 0
    totals = segment.totals()
    assert totals.route(0).classes == (0, 6, 0, 0, 0)
    assert totals.route(1).classes[4] == 7 and totals.route(1).requests == 7 + 5 + 4
    assert totals.route(1).bytes_in == (7 + 2 * (2 ** 63 - 1)) % 2 ** 64  # clamped per request, wraps in sum
    assert totals.buckets[-1] == 2  # inf, 1e300; NaN and negatives count as 0 s
    assert shared_inflight(segment) == [0, 0, 0, 0]
    metrics.release()
    metrics.release()  # idempotent, and every method is a no-op afterwards
    metrics.request(1, 200, 0.1, 1, 1)
    metrics.connection_opened()
    metrics.connection_closed()
    metrics.inflight_begin(1)
    metrics.inflight_end(1)
    assert metrics.inflight(1) == 0
    assert segment.totals().requests == totals.requests


def test_bad_worker_index_and_closed_segment(impl):
    seg = Segment.create(2, 2, 2)
    with pytest.raises(IndexError):
        impl.WorkerMetrics(seg.mapping, seg.fd, seg.layout, 2)
    with pytest.raises(IndexError):
        seg.worker(-1)
    metrics = seg.worker(1)
    assert seg.worker(1) is metrics
    seg.close()
    seg.close()
    metrics.request(1, 200, 0.1, 1, 1)  # released by close(): no-op, no crash
    with pytest.raises(ValueError):
        seg.totals()


def test_view_keeps_the_mapping_open(impl):
    seg = Segment.create(1, 1, 1)
    metrics = impl.WorkerMetrics(seg.mapping, seg.fd, seg.layout, 0)
    with pytest.raises(BufferError):
        seg.close()  # an outside view still exports the mapping: refuse rather than leave it dangling
    metrics.release()
    seg.close()  # retried: now it closes
    assert seg.mapping.closed
    with pytest.raises(ValueError):
        seg.totals()


# --- master-side operations ---------------------------------------------------------------------

def test_reclaim_worker(segment):
    w0, w1 = segment.worker(0), segment.worker(1)
    for _ in range(3):
        w0.inflight_begin(1)
        w0.connection_opened()
    w0.inflight_begin(2)
    w0.request(1, 200, 0.01, 10, 20)
    w1.inflight_begin(1)
    w1.inflight_begin(1)
    w1.connection_opened()
    assert shared_inflight(segment) == [0, 5, 1, 0]
    segment.reclaim_worker(0)
    assert shared_inflight(segment) == [0, 2, 0, 0]
    stats = segment.worker_stats(0)
    assert (stats.active_connections, stats.connections_accepted, stats.requests_total) == (0, 3, 1)
    assert decode(segment, 0)["own_inflight[1]"] == 0
    segment.reclaim_worker(0)  # idempotent
    assert shared_inflight(segment) == [0, 2, 0, 0]
    totals = segment.totals()
    assert totals.connections_active == 1 and totals.connections_accepted == 4
    assert totals.route(1) == ((0, 1, 0, 0, 0), 10, 20)
    w1.inflight_end(1)
    w1.inflight_end(1)
    assert shared_inflight(segment) == [0, 0, 0, 0]
    assert segment.inflight_add(3, 5) == 5 and segment.inflight(3) == 5
    with pytest.raises(IndexError):
        segment.inflight_add(4, 1)


def test_clear_route_zeroes_every_worker_and_leaves_holes_alone():
    with Segment.create(workers=4, routes=2000, targets=2) as seg:
        for index in (0, 2):
            seg.worker(index).request(7, 200, 0.1, 5, 6)
            seg.worker(index).request(8, 500, 0.1, 5, 6)
        before = os.fstat(seg.fd).st_blocks
        seg.clear_route(7)
        seg.clear_route(1999)  # in pages nobody wrote
        assert os.fstat(seg.fd).st_blocks == before
        totals = seg.totals()
        assert totals.route(7) == ((0,) * 5, 0, 0)
        assert totals.route(8) == ((0, 0, 0, 0, 2), 10, 12)
        assert totals.requests == 4  # the histogram is per worker, not per route: kept


def test_totals_skip_unwritten_pages():
    """A 64 x 10,000 segment is ~41 MB of address space; scraping it must not allocate it."""
    with Segment.create(workers=64, routes=10_000, targets=256) as seg:
        assert seg.layout.size > 40_000_000
        for index in (0, 63):
            seg.worker(index).request(9_999, 200, 0.2, 1, 2)
            seg.worker(index).inflight_begin(255)
        totals = seg.totals()
        text = render(seg, {9_999: "last"}, {})
        assert totals.route(9_999) == ((0, 2, 0, 0, 0), 2, 4) and totals.inflight[255] == 2
        assert 'litemesh_requests_total{route="last",code_class="2xx"} 2' in text
        assert os.fstat(seg.fd).st_blocks * 512 < 1 << 20


# --- real processes -----------------------------------------------------------------------------

CHILD = textwrap.dedent("""
    import sys
    from litemesh.shm import Segment, view
    fd, index, mode, n = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    metrics = Segment.attach(fd).worker(index)  # the writer keeps the mapping alive
    print(view.impl.__name__, flush=True)
    if mode == "requests":
        for i in range(n):
            metrics.connection_opened()
            metrics.request(i % 4, 100 + 100 * (i % 5), (i % 7) / 1000, i, 2 * i)
            metrics.connection_closed()
    else:
        sys.stdin.readline()  # start together
        for _ in range(n):
            metrics.inflight_begin(1)
            metrics.inflight_begin(2)
            metrics.inflight_end(1)
            metrics.inflight_end(2)
        for _ in range(index + 1):
            metrics.inflight_begin(1)  # still in flight when the process exits
""")


def spawn(seg: Segment, index: int, mode: str, n: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, str(seg.fd), str(index), mode, str(n)],
                            pass_fds=(seg.fd,), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def test_children_attach_by_fd_and_parent_sums(segment):
    n = 1000
    children = [spawn(segment, index, "requests", n) for index in (0, 2)]
    for child in children:
        out, _ = child.communicate(timeout=60)
        assert child.returncode == 0
        assert out.strip() == view.impl.__name__
    totals = segment.totals()
    assert totals.requests == 2 * n and totals.connections_accepted == 2 * n and totals.connections_active == 0
    for route in range(4):
        mine = [i for i in range(n) if i % 4 == route]
        expected_classes = [0] * 5
        for i in mine:
            expected_classes[i % 5] += 2
        assert totals.route(route) == (tuple(expected_classes), 2 * sum(mine), 4 * sum(mine))
    assert sum(totals.buckets) == 2 * n
    assert totals.duration_sum_us == 2 * sum(round((i % 7) / 1000 * 1e6) for i in range(n))
    assert segment.worker_stats(2).requests_total == n and segment.worker_stats(1).requests_total == 0


def test_concurrent_inflight_from_two_processes_is_exact(segment):
    n = 100_000
    children = [spawn(segment, index, "inflight", n) for index in (0, 1)]
    for child in children:
        assert child.stdout.readline().strip() == view.impl.__name__  # attached and ready
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()
    for child in children:
        child.communicate(timeout=300)
        assert child.returncode == 0
    assert shared_inflight(segment) == [0, 1 + 2, 0, 0]  # every add landed; only the leftovers remain
    segment.reclaim_worker(0)
    assert shared_inflight(segment) == [0, 2, 0, 0]
    segment.reclaim_worker(1)
    assert shared_inflight(segment) == [0, 0, 0, 0]


# --- slot names ---------------------------------------------------------------------------------

def test_slot_names_are_stable_across_reloads_and_renames():
    names = SlotNames(capacity=6)
    first = names.assign(["a", "b", "c"])
    assert first.slots == {"a": 1, "b": 2, "c": 3} and first.overflow == ()
    assert names.assign(["c", "a", "b", "a"]).slots == {"c": 3, "a": 1, "b": 2}  # order and duplicates
    renamed = names.assign(["a", "b2", "c"])  # b renamed: a new slot; b's slot keeps b's history
    assert renamed.slots == {"a": 1, "b2": 4, "c": 3}
    assert names["b"] == 0 and names["b2"] == 4
    assert names.by_slot() == {1: "a", 2: "b", 3: "c", 4: "b2"}
    back = names.assign(["a", "b", "c"])  # renamed back before the slot was reused: same slot
    assert back.slots == {"a": 1, "b": 2, "c": 3}
    assert names.live() == {"a": 1, "b": 2, "c": 3}


def test_slot_names_overflow_and_reuse():
    resets: list[int] = []
    names = SlotNames(capacity=4, reset=resets.append)  # slots 1..3
    result = names.assign(["a", "b", "c", "d", "e"])
    assert result.slots == {"a": 1, "b": 2, "c": 3, "d": 0, "e": 0}
    assert result.overflow == ("d", "e") and resets == []
    result = names.assign(["a", "d", "e"])  # b, c retired (b first); full, so d and e reuse them
    assert result.slots == {"a": 1, "d": 2, "e": 3} and result.overflow == ()
    assert resets == [2, 3]  # zeroed before reuse, oldest retirement first
    assert names.by_slot() == {1: "a", 2: "d", 3: "e"}
    result = names.assign(["a", "d", "e", "b"])
    assert result.slots["b"] == 0 and result.overflow == ("b",)
    assert names.assign(["d", "b"]).slots == {"d": 2, "b": 1}  # a retired; b takes its slot
    assert resets == [2, 3, 1]
    with pytest.raises(ValueError):
        SlotNames(0)
    assert SlotNames(1).assign(["x"]).overflow == ("x",)


def test_slot_names_with_segment_reset():
    with Segment.create(1, 3, 1) as seg:
        names = SlotNames(3, reset=seg.clear_route)
        slots = names.assign(["old", "keep"]).slots
        seg.worker(0).request(slots["old"], 200, 0.0, 1, 1)
        seg.worker(0).request(slots["keep"], 200, 0.0, 1, 1)
        new = names.assign(["keep", "new"]).slots["new"]
        assert new == slots["old"]
        assert seg.totals().route(new).requests == 0 and seg.totals().route(slots["keep"]).requests == 1


# --- Prometheus ---------------------------------------------------------------------------------

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_HELP = re.compile(rf"# HELP ({_NAME}) (.*)\Z")
_TYPE = re.compile(rf"# TYPE ({_NAME}) (counter|gauge|histogram|summary|untyped)\Z")
_SAMPLE = re.compile(rf"({_NAME})(?:\{{(.*)\}})? (\S+)\Z")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(?:,|\Z)')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def parse_exposition(text: str) -> tuple[dict[str, str], list[tuple[str, dict[str, str], float]]]:
    """A strict reader of text format 0.0.4: families with TYPE before samples, contiguous, no dupes."""
    assert text.endswith("\n")
    types: dict[str, str] = {}
    samples: list[tuple[str, dict[str, str], float]] = []
    seen: set[tuple[str, tuple]] = set()
    current = None
    for line in text[:-1].split("\n"):
        if line.startswith("#"):
            header = _HELP.match(line) or _TYPE.match(line)
            assert header, line
            name = header.group(1)
            if name != current:
                assert name not in types, f"family {name} is not contiguous"
                current = name
            if header.re is _TYPE:
                types[name] = header.group(2)
            continue
        match = _SAMPLE.match(line)
        assert match, line
        name, raw_labels, raw_value = match.groups()
        assert current in types, line
        suffixes = ("_bucket", "_sum", "_count") if types[current] == "histogram" else ("",)
        assert name in {current + suffix for suffix in suffixes}, line
        labels: dict[str, str] = {}
        pos = 0
        while raw_labels and pos < len(raw_labels):
            label = _LABEL.match(raw_labels, pos)
            assert label, line
            assert label.group(1) not in labels
            labels[label.group(1)] = re.sub(r'\\[\\"n]', lambda m: _UNESCAPE[m.group()], label.group(2))
            pos = label.end()
        value = float(raw_value)  # accepts +Inf/-Inf/NaN, rejects anything else
        key = (name, tuple(sorted(labels.items())))
        assert key not in seen, line
        seen.add(key)
        samples.append((name, labels, value))
    return types, samples


def test_prometheus_output_parses_and_histogram_is_cumulative(impl, segment, writer):
    metrics, other = writer(impl, 0), writer(impl, 2)
    durations = [0.0001, 0.0004, 0.003, 0.003, 0.07, 0.9, 3.0, 30.0]
    for i, duration in enumerate(durations):
        (metrics if i % 2 else other).request(1, 200 + (i % 3) * 100, duration, 100, 1000)
    metrics.request(0, 404, 0.001, 0, 50)  # no route matched
    metrics.request(3, 502, 0.001, 0, 50)  # a slot nobody named
    metrics.connection_opened()
    metrics.inflight_begin(2)
    route_names = {1: 'api "v1"\\users\nx', 2: "idle"}
    text = render(segment, route_names, {1: "svc/a:80", 2: "svc/b:80"}, {"litemesh_config_generation": 7,
                                                                            "litemesh_uptime_seconds": 1.5})
    types, samples = parse_exposition(text)
    assert types == {
        "litemesh_requests_total": "counter", "litemesh_request_bytes_received_total": "counter",
        "litemesh_request_bytes_sent_total": "counter", "litemesh_request_duration_seconds": "histogram",
        "litemesh_connections_active": "gauge", "litemesh_connections_accepted_total": "counter",
        "litemesh_upstream_in_flight": "gauge", "litemesh_config_generation": "gauge",
        "litemesh_uptime_seconds": "gauge",
    }
    by_key = {(name, tuple(sorted(labels.items()))): value for name, labels, value in samples}

    def get(name: str, **labels: str) -> float:
        return by_key[(name, tuple(sorted(labels.items())))]

    api = route_names[1]
    assert get("litemesh_requests_total", route=api, code_class="2xx") == 3
    assert get("litemesh_requests_total", route=api, code_class="4xx") == 2
    assert get("litemesh_requests_total", route=api, code_class="1xx") == 0  # named: zeros are written
    assert get("litemesh_requests_total", route="idle", code_class="5xx") == 0
    assert get("litemesh_requests_total", route="", code_class="4xx") == 1  # slot 0
    assert get("litemesh_requests_total", route="#3", code_class="5xx") == 1
    assert ("litemesh_requests_total", (("code_class", "2xx"), ("route", "#3"))) not in by_key  # zero, unnamed
    assert not any(labels.get("route") == "#4" for _name, labels, _value in samples)
    assert get("litemesh_request_bytes_received_total", route=api) == 800
    assert get("litemesh_request_bytes_sent_total", route="") == 50
    assert get("litemesh_upstream_in_flight", target="svc/b:80") == 1
    assert get("litemesh_upstream_in_flight", target="svc/a:80") == 0
    assert get("litemesh_connections_active") == 1 and get("litemesh_connections_accepted_total") == 1
    assert get("litemesh_config_generation") == 7 and get("litemesh_uptime_seconds") == 1.5

    buckets = [(labels["le"], value) for name, labels, value in samples
               if name == "litemesh_request_duration_seconds_bucket"]
    bounds = [float(le) for le, _ in buckets]
    counts = [value for _, value in buckets]
    assert bounds == [*L.BOUNDS, math.inf] and buckets[-1][0] == "+Inf"
    assert counts == sorted(counts)  # cumulative
    expected = [sum(1 for d in [*durations, 0.001, 0.001] if d <= bound) for bound in bounds]
    assert counts == expected
    assert get("litemesh_request_duration_seconds_count") == counts[-1] == 10
    assert get("litemesh_request_duration_seconds_sum") == pytest.approx(sum(durations) + 0.002)
    with pytest.raises(ValueError):
        render(segment, {}, {}, {"bad name": 1.0})


def test_record_and_inflight_add_count_as_request_and_inflight_begin_end(impl, segment, writer):
    """The compiled exchange's C entry points write what the Python-facing methods write."""
    metrics = writer(impl, 0)
    metrics.request(1, 200, 0.01, 10, 20)
    metrics.request(3, 503, 0.2, 0, 7)
    metrics.inflight_begin(2)
    by_request = decode(segment, 0)
    by_request_inflight = shared_inflight(segment)
    metrics.inflight_end(2)
    other = writer(impl, 1)
    other.record(1, 200, 0.01, 10, 20)
    other.record(3, 503, 0.2, 0, 7)
    other.inflight_add(2, 1)
    assert decode(segment, 1) == by_request and shared_inflight(segment) == by_request_inflight
    other.record(-5, 99_999, -1.0, -1, -1)  # out of range: counted as "no route", last class, 0 bytes
    other.inflight_add(99, 1)  # no such target: ignored
    assert segment.totals().route(0)[0][-1] == 1 and shared_inflight(segment) == by_request_inflight
