"""The shared-memory segment: created by the master before it spawns workers, attached by fd in each.

The master calls :meth:`Segment.create` and passes ``segment.fd`` to every worker (``pass_fds``);
a worker calls ``Segment.attach(fd).worker(index)`` and keeps only the returned writer (it keeps
the mapping alive). The master reads: :meth:`Segment.totals` sums every worker slot for
``/metrics``, :meth:`Segment.reclaim_worker` cleans up after a dead worker, and
:meth:`Segment.clear_route` zeroes a route slot before it is given to another route.

The segment is a memfd: it lives as long as some process holds its fd or mapping, so nothing
needs unlinking, even after a crash. It is sealed against resizing, so no process can truncate
it under another one's mapping (SIGBUS). Pages nobody wrote are holes; the master's readers find
written pages with ``lseek(SEEK_DATA)`` and skip the rest, because reading a hole through the
mapping would allocate it.
"""
from __future__ import annotations

import errno
import mmap
import os
import tempfile
from array import array
from dataclasses import dataclass
from typing import NamedTuple, Optional

from . import view
from .layout import (
    ACCEPTED, ACTIVE, BUCKET0, CLASSES, DURATION_COUNT, DURATION_SUM, HEADER_SIZE, HEADER_WORDS, ROUTE_BYTES_IN,
    ROUTE_BYTES_OUT, ROUTE_CLASS0, ROUTE_WORDS, WORD, Layout,
)
from .view import WorkerMetrics

__all__ = ["Segment", "Totals", "RouteTotals", "WorkerStats"]

_SEEK_DATA = getattr(os, "SEEK_DATA", None)
_SEEK_HOLE = getattr(os, "SEEK_HOLE", None)


class RouteTotals(NamedTuple):
    classes: tuple[int, ...]  # requests by status class, 1xx..5xx
    bytes_in: int
    bytes_out: int

    @property
    def requests(self) -> int:
        return sum(self.classes)


class WorkerStats(NamedTuple):
    active_connections: int
    connections_accepted: int
    requests_total: int


@dataclass(frozen=True)
class Totals:
    """All worker slots summed (plus the shared in-flight counters), as read by one scrape."""

    layout: Layout
    connections_active: int
    connections_accepted: int
    duration_sum_us: int
    requests: int  # = the histogram's count
    buckets: tuple[int, ...]  # per bucket, NOT cumulative; the last one is +Inf
    inflight: tuple[int, ...]  # per target slot
    route_words: array[int]  # R records of ROUTE_WORDS summed words (see layout.py)

    @property
    def duration_sum(self) -> float:
        """Sum of request durations, seconds."""
        return self.duration_sum_us / 1e6

    def route(self, route: int) -> RouteTotals:
        base = route * ROUTE_WORDS
        words = self.route_words[base:base + ROUTE_WORDS]
        return RouteTotals(tuple(words[ROUTE_CLASS0:ROUTE_CLASS0 + len(CLASSES)]), words[ROUTE_BYTES_IN],
                           words[ROUTE_BYTES_OUT])


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _new_fd(name: str) -> int:
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create(name, os.MFD_CLOEXEC | getattr(os, "MFD_ALLOW_SEALING", 0))
    else:  # not Linux: an unlinked temporary file, preferably in RAM
        shm_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
        with tempfile.TemporaryFile(dir=shm_dir) as tmp:
            fd = os.dup(tmp.fileno())
    return fd


def _seal(fd: int) -> None:
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
    except (AttributeError, OSError):
        pass  # no sealing here: the size check at attach still applies


class Segment:
    """One mapped segment; see the module docstring. ``close()`` closes the mapping and the fd."""

    def __init__(self, fd: int, mapping: mmap.mmap, layout: Layout) -> None:
        self._fd = fd
        self._mm = mapping
        self.layout = layout
        self._impl = view.impl
        self._workers: dict[int, WorkerMetrics] = {}
        self._q: Optional[memoryview] = memoryview(mapping).cast("q")

    @classmethod
    def create(cls, workers: int, routes: int, targets: int) -> Segment:
        """A new zeroed segment with these capacities (route and target slot 0 are reserved)."""
        layout = Layout(workers, routes, targets)
        fd = _new_fd("litemesh-shm")
        try:
            os.ftruncate(fd, layout.size)
            _seal(fd)
            mapping = mmap.mmap(fd, layout.size)
        except BaseException:
            os.close(fd)
            raise
        segment = cls(fd, mapping, layout)
        segment._words()[:HEADER_WORDS] = array("q", [_signed(w) for w in layout.header()])
        return segment

    @classmethod
    def attach(cls, fd: int) -> Segment:
        """Map the segment behind ``fd`` (inherited from the master); the Segment then owns ``fd``.

        Raises ValueError if ``fd`` is not a segment of this layout version.
        """
        header = array("Q", os.pread(fd, HEADER_SIZE, 0))
        layout = Layout.from_header(tuple(header))
        if os.fstat(fd).st_size != layout.size:
            raise ValueError("shm: segment file size does not match its header")
        return cls(fd, mmap.mmap(fd, layout.size), layout)

    @property
    def fd(self) -> int:
        return self._fd

    @property
    def mapping(self) -> mmap.mmap:
        """The shared mapping, for building a view of one particular twin (tests, benchmarks)."""
        return self._mm

    def close(self) -> None:
        """Release every writer handed out, unmap, close the fd. Idempotent.

        Raises BufferError while a view made outside :meth:`worker` is alive (its pointers would
        dangle); release it and call ``close()`` again.
        """
        if self._mm.closed:
            return
        for metrics in self._workers.values():
            metrics.release()
        self._workers.clear()
        if self._q is not None:
            self._q.release()
            self._q = None
        self._mm.close()
        os.close(self._fd)

    def __enter__(self) -> Segment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _words(self) -> memoryview:
        if self._q is None:
            raise ValueError("shm: segment is closed")
        return self._q

    # -- writers -----------------------------------------------------------------------------
    def worker(self, index: int) -> WorkerMetrics:
        """The metrics writer of worker slot ``index`` (one per index; only that worker may write)."""
        metrics = self._workers.get(index)
        if metrics is None:
            self._words()
            metrics = self._workers[index] = self._impl.WorkerMetrics(self._mm, self._fd, self.layout, index)
        return metrics

    def inflight_add(self, target: int, delta: int) -> int:
        """Atomically add ``delta`` to target's shared in-flight counter; the new value."""
        self._check_target(target)
        self._words()
        return int(self._impl.atomic_add(self._mm, self._fd, self.layout.inflight_offset + target * WORD, delta))

    def inflight(self, target: int) -> int:
        self._check_target(target)
        return self._words()[self.layout.inflight_offset // WORD + target]

    def _check_target(self, target: int) -> None:
        if not 0 <= target < self.layout.targets:
            raise IndexError(f"target slot {target} out of range [0, {self.layout.targets})")

    # -- master-side maintenance -------------------------------------------------------------
    def reclaim_worker(self, index: int) -> None:
        """After worker ``index`` died: take its in-flight share out of the shared counters, zero its gauge.

        Counters stay (Prometheus totals must not go down when a worker restarts). Only call this
        while no process writes the slot, i.e. before its replacement starts.
        """
        words = self._words()
        base = self.layout.slot_offset(index) // WORD
        own = base + self.layout.own_word
        shares = words[own:own + self.layout.targets].tolist()
        for target, share in enumerate(shares):
            if share:
                self._impl.atomic_add(self._mm, self._fd, self.layout.inflight_offset + target * WORD, -share)
                words[own + target] = 0
        words[base + ACTIVE] = 0

    def clear_route(self, route: int) -> None:
        """Zero route slot ``route`` in every worker slot, before the slot is given to another route.

        The slot must be out of use: a request still finishing on a snapshot that names the old
        route could otherwise add to it after the reset (or lose its own increment).
        """
        words = self._words()
        for index in range(self.layout.workers):
            offset = self.layout.route_offset(index, route)
            if self._has_data(offset):  # writing a hole would allocate it
                words[offset // WORD:offset // WORD + ROUTE_WORDS] = array("q", bytes(ROUTE_WORDS * WORD))

    def _has_data(self, offset: int) -> bool:
        if _SEEK_DATA is None:
            return True
        try:
            return os.lseek(self._fd, offset, _SEEK_DATA) == offset
        except OSError as exc:
            return exc.errno != errno.ENXIO  # ENXIO: only holes from here on; else no SEEK_DATA: assume data

    def _data_ranges(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """The written (non-hole) byte ranges within [lo, hi)."""
        if _SEEK_DATA is None or _SEEK_HOLE is None:
            return [(lo, hi)]
        ranges: list[tuple[int, int]] = []
        pos = lo
        try:
            while pos < hi:
                start = os.lseek(self._fd, pos, _SEEK_DATA)
                if start >= hi:
                    break
                pos = min(os.lseek(self._fd, start, _SEEK_HOLE), hi)
                ranges.append((start, pos))
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                return [(lo, hi)]  # SEEK_DATA unsupported: read everything
        return ranges

    # -- readers -----------------------------------------------------------------------------
    def totals(self) -> Totals:
        """Every worker slot summed word by word, skipping the pages no worker wrote."""
        layout, words = self.layout, self._words()
        first, stride, used = layout.slots_offset, layout.slot_size, layout.slot_words * WORD
        acc = array("Q", bytes(used))
        for lo, hi in self._data_ranges(first, layout.size):
            pos = lo
            while pos < hi:
                base = first + (pos - first) // stride * stride
                end = min(hi, base + used)
                if pos < end:
                    self._impl.accumulate(self._mm, pos, acc, (pos - base) // WORD, (end - pos) // WORD)
                pos = base + stride
        shared = layout.inflight_offset // WORD
        return Totals(
            layout=layout,
            connections_active=_signed(acc[ACTIVE]),
            connections_accepted=acc[ACCEPTED],
            duration_sum_us=acc[DURATION_SUM],
            requests=acc[DURATION_COUNT],
            buckets=tuple(acc[BUCKET0:BUCKET0 + layout.buckets]),
            inflight=tuple(words[shared:shared + layout.targets].tolist()),
            route_words=acc[layout.routes_word:],
        )

    def worker_stats(self, index: int) -> WorkerStats:
        """One worker's connection and request counts, for a status page."""
        words = self._words()
        base = self.layout.slot_offset(index) // WORD
        return WorkerStats(words[base + ACTIVE], words[base + ACCEPTED] & ((1 << 64) - 1),
                           words[base + DURATION_COUNT] & ((1 << 64) - 1))
