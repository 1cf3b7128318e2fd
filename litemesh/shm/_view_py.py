"""Pure-Python twin of ``litemesh._speedups.shm``: the per-worker metrics writer and the segment helpers.

Same API and same bytes as the compiled view; every offset comes from :mod:`litemesh.shm.layout`.
Words are read and written through ``memoryview.cast`` ("Q" for counters, "q" for gauges). The
shared in-flight counters need a real atomic add across processes, which Python lacks, so the
read-modify-write is done under a POSIX record lock on that counter's 8 bytes of the segment fd
(``lockf``: owned per process, so inherited fds still exclude each other, unlike ``flock``) plus a
thread lock (record locks do not exclude threads of one process). All processes sharing a segment
must therefore use the same twin: a lock does not exclude a compiled worker's atomic add.
"""
from __future__ import annotations

import fcntl
import threading
from array import array
from bisect import bisect_left
from mmap import mmap
from operator import add
from typing import Any, Optional

from .layout import (
    ACCEPTED, ACTIVE, BUCKET0, CLASSES, DURATION_COUNT, DURATION_SUM, ROUTE_BYTES_IN, ROUTE_BYTES_OUT,
    ROUTE_CLASS0, ROUTE_WORDS, WORD, Layout,
)

__all__ = ["WorkerMetrics", "atomic_add", "accumulate"]

MASK = (1 << 64) - 1
INT64_MAX = (1 << 63) - 1
#: per-request duration cap for the microsecond sum (2**62 us: ~146,000 years)
MAX_DURATION_US = float(1 << 62)
_LAST_CLASS = len(CLASSES) - 1

_thread_lock = threading.Lock()


def _signed(value: int) -> int:
    value &= MASK
    return value - (1 << 64) if value > INT64_MAX else value


def _check(buf: Any, offset: int, nbytes: int) -> None:
    if offset < 0 or offset % WORD or offset + nbytes > len(buf):
        raise ValueError(f"shm: offset {offset} (+{nbytes}) is unaligned or outside the segment")


def _locked_add(words: memoryview, fd: int, index: int, delta: int) -> int:
    with _thread_lock:
        fcntl.lockf(fd, fcntl.LOCK_EX, WORD, index * WORD)
        try:
            value = words[index] = _signed(words[index] + delta)
        finally:
            fcntl.lockf(fd, fcntl.LOCK_UN, WORD, index * WORD)
    return value


def atomic_add(buf: mmap, fd: int, offset: int, delta: int) -> int:
    """Add ``delta`` to the int64 at byte ``offset`` atomically across processes; return the new value."""
    _check(buf, offset, WORD)
    with memoryview(buf) as raw, raw.cast("q") as words:
        return _locked_add(words, fd, offset // WORD, delta)


def accumulate(buf: mmap, offset: int, acc: array[int], start: int, count: int) -> None:
    """``acc[start:start+count] += words at byte offset`` (uint64, wrapping), for summing slots."""
    _check(buf, offset, count * WORD)
    if start < 0 or start + count > len(acc):
        raise ValueError("shm: accumulator range out of bounds")
    with memoryview(buf) as raw, raw[offset:offset + count * WORD] as part, part.cast("Q") as src:
        sums = list(map(add, acc[start:start + count], src))
    try:
        acc[start:start + count] = array("Q", sums)
    except OverflowError:
        acc[start:start + count] = array("Q", [value & MASK for value in sums])


class WorkerMetrics:
    """The writer of one worker slot (see ``litemesh/_speedups/shm.pyi`` for the method contracts)."""

    __slots__ = ("index", "_fd", "_u", "_s", "_active", "_accepted", "_sum", "_count", "_bucket0", "_own",
                 "_routes0", "_shared", "_nroutes", "_ntargets", "_bounds")

    def __init__(self, buf: mmap, fd: int, layout: Layout, index: int) -> None:
        base = layout.slot_offset(index) // WORD
        if len(buf) < layout.size:
            raise ValueError("shm: buffer smaller than its layout")
        self.index = index
        self._fd = fd
        with memoryview(buf) as raw:
            self._u: Optional[memoryview] = raw.cast("Q")
            self._s: Optional[memoryview] = raw.cast("q")
        self._active = base + ACTIVE
        self._accepted = base + ACCEPTED
        self._sum = base + DURATION_SUM
        self._count = base + DURATION_COUNT
        self._bucket0 = base + BUCKET0
        self._own = base + layout.own_word
        self._routes0 = base + layout.routes_word
        self._shared = layout.inflight_offset // WORD
        self._nroutes = layout.routes
        self._ntargets = layout.targets
        self._bounds = layout.bounds

    def request(self, route: int, status: int, duration: float, bytes_in: int, bytes_out: int) -> None:
        u = self._u
        if u is None:
            return
        if not 0 <= route < self._nroutes:
            route = 0
        cls = status // 100 - 1
        if not 0 <= cls <= _LAST_CLASS:
            cls = _LAST_CLASS
        bytes_in = 0 if bytes_in < 0 else min(bytes_in, INT64_MAX)
        bytes_out = 0 if bytes_out < 0 else min(bytes_out, INT64_MAX)
        rec = self._routes0 + route * ROUTE_WORDS
        u[rec + ROUTE_CLASS0 + cls] = (u[rec + ROUTE_CLASS0 + cls] + 1) & MASK
        u[rec + ROUTE_BYTES_IN] = (u[rec + ROUTE_BYTES_IN] + bytes_in) & MASK
        u[rec + ROUTE_BYTES_OUT] = (u[rec + ROUTE_BYTES_OUT] + bytes_out) & MASK
        if not duration >= 0.0:  # negative or NaN
            duration = 0.0
        micros = min(duration * 1e6, MAX_DURATION_US)
        u[self._sum] = (u[self._sum] + round(micros)) & MASK  # round-half-even, as C llrint
        bucket = self._bucket0 + bisect_left(self._bounds, duration)  # first bound >= duration, else +Inf
        u[bucket] = (u[bucket] + 1) & MASK
        u[self._count] = (u[self._count] + 1) & MASK

    def connection_opened(self) -> None:
        u, s = self._u, self._s
        if u is None or s is None:
            return
        s[self._active] = _signed(s[self._active] + 1)
        u[self._accepted] = (u[self._accepted] + 1) & MASK

    def connection_closed(self) -> None:
        s = self._s
        if s is not None:
            s[self._active] = _signed(s[self._active] - 1)

    #: the compiled twin's C entry point for the compiled exchange; here the same method (inflight_add
    #: below is the other)
    record = request

    def inflight_begin(self, target: int) -> None:
        self.inflight_add(target, 1)

    def inflight_end(self, target: int) -> None:
        self.inflight_add(target, -1)

    def inflight_add(self, target: int, delta: int) -> None:
        s = self._s
        if s is None or not 0 <= target < self._ntargets:
            return
        _locked_add(s, self._fd, self._shared + target, delta)
        s[self._own + target] = _signed(s[self._own + target] + delta)

    def inflight(self, target: int) -> int:
        s = self._s
        if s is None or not 0 <= target < self._ntargets:
            return 0
        return s[self._shared + target]

    def release(self) -> None:
        for view in (self._u, self._s):
            if view is not None:
                view.release()
        self._u = self._s = None
