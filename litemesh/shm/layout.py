"""The shared-memory segment layout: the single definition, used by every view of the segment.

Everything is in 8-byte words, little-endian host order, 8-byte aligned::

    header        one 64-byte line: magic, version, W, R, T, B, slot size, segment size
    in-flight     T x int64, one per target; atomic add from any process
    (pad to a page)
    worker slot 0 .. W-1, each page-aligned, each written by its own worker only:
        active        int64   connections open now (gauge)
        accepted      uint64  connections accepted
        duration_sum  uint64  request durations, microseconds
        duration_count uint64 requests (also "requests total")
        buckets       B x uint64, per-bucket (not cumulative) counts; the last bucket is +Inf
        own in-flight T x int64, this worker's share of the in-flight array
        (pad to a 64-byte line)
        routes        R records of ROUTE_WORDS words, one cache line each:
                      1xx 2xx 3xx 4xx 5xx bytes_in bytes_out (reserved)

Route slot 0 is "no route matched" (and names that did not fit, see ``names.py``). Worker slots
are page-aligned so that a worker never shares a page with another one, and pages nobody has
touched stay holes in the memfd: a large route capacity costs address space, not memory.

The compiled view (``litemesh/_speedups/shm.pyx``) and the pure one (``_view_py.py``) take all
offsets from a :class:`Layout`; neither has a constant of its own. Bump ``VERSION`` on any change.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

MAGIC: int = int.from_bytes(b"LMESHSHM", "little")
VERSION: int = 1
WORD = 8
LINE = 64
PAGE = 4096

#: finite histogram bounds in seconds (Prometheus ``le``); one more bucket, +Inf, follows
BOUNDS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BUCKETS = len(BOUNDS) + 1
#: status classes, in route-record order
CLASSES: tuple[str, ...] = ("1xx", "2xx", "3xx", "4xx", "5xx")

# header words
H_MAGIC, H_VERSION, H_WORKERS, H_ROUTES, H_TARGETS, H_BUCKETS, H_SLOT_SIZE, H_SIZE = range(8)
HEADER_WORDS = 8
HEADER_SIZE = LINE

# worker slot: fixed words first (the ones every request touches sit in one line)
ACTIVE, ACCEPTED, DURATION_SUM, DURATION_COUNT, BUCKET0 = range(5)
# route record words
ROUTE_CLASS0, ROUTE_BYTES_IN, ROUTE_BYTES_OUT = 0, 5, 6
ROUTE_WORDS = LINE // WORD  # 7 used + 1 reserved: a record is exactly one cache line

#: sanity bounds: capacities are sparse, but a typo must not ask for a terabyte of address space
MAX_CAPACITY = 1 << 20
MAX_SIZE = 1 << 36


def _align(n: int, to: int) -> int:
    return (n + to - 1) // to * to


@dataclass(frozen=True)
class Layout:
    """Offsets of one segment, computed from its capacities (see the module docstring)."""

    workers: int
    routes: int
    targets: int
    buckets: int = BUCKETS

    def __post_init__(self) -> None:
        for name in ("workers", "routes", "targets"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= MAX_CAPACITY:
                raise ValueError(f"shm layout: {name} must be an int in [1, {MAX_CAPACITY}], not {value!r}")
        if self.buckets != BUCKETS:
            raise ValueError(f"shm layout: {self.buckets} histogram buckets, this build has {BUCKETS}")
        if self.size > MAX_SIZE:
            raise ValueError(f"shm layout: {self.size} bytes exceeds {MAX_SIZE}")

    # -- shared part -----------------------------------------------------------------------
    @property
    def inflight_offset(self) -> int:
        """Byte offset of the shared in-flight array (T x int64)."""
        return HEADER_SIZE

    @cached_property
    def slots_offset(self) -> int:
        return _align(HEADER_SIZE + self.targets * WORD, PAGE)

    # -- worker slots (word indexes are relative to the slot start) ------------------------
    @cached_property
    def own_word(self) -> int:
        """First word of the worker's own in-flight contributions (T x int64)."""
        return BUCKET0 + self.buckets

    @cached_property
    def routes_word(self) -> int:
        """First word of the route records (R x ROUTE_WORDS)."""
        return _align((self.own_word + self.targets) * WORD, LINE) // WORD

    @cached_property
    def slot_words(self) -> int:
        """Words of a slot in use (the slot itself is rounded up to a page)."""
        return self.routes_word + self.routes * ROUTE_WORDS

    @cached_property
    def slot_size(self) -> int:
        return _align(self.slot_words * WORD, PAGE)

    @cached_property
    def size(self) -> int:
        return self.slots_offset + self.workers * self.slot_size

    def slot_offset(self, worker: int) -> int:
        """Byte offset of worker slot ``worker``."""
        if not 0 <= worker < self.workers:
            raise IndexError(f"worker slot {worker} out of range [0, {self.workers})")
        return self.slots_offset + worker * self.slot_size

    def route_offset(self, worker: int, route: int) -> int:
        """Byte offset of route record ``route`` in worker slot ``worker``."""
        if not 0 <= route < self.routes:
            raise IndexError(f"route slot {route} out of range [0, {self.routes})")
        return self.slot_offset(worker) + (self.routes_word + route * ROUTE_WORDS) * WORD

    @property
    def bounds(self) -> tuple[float, ...]:
        return BOUNDS

    # -- header ----------------------------------------------------------------------------
    def header(self) -> tuple[int, ...]:
        """The header words, in H_* order."""
        return (MAGIC, VERSION, self.workers, self.routes, self.targets, self.buckets, self.slot_size, self.size)

    @classmethod
    def from_header(cls, words: tuple[int, ...]) -> Layout:
        """The layout a header describes; ValueError if it is not a segment of this version."""
        if len(words) < HEADER_WORDS or words[H_MAGIC] != MAGIC:
            raise ValueError("shm: not a LiteMesh segment (bad magic)")
        if words[H_VERSION] != VERSION:
            raise ValueError(f"shm: segment layout version {words[H_VERSION]}, this build reads {VERSION}")
        layout = cls(words[H_WORKERS], words[H_ROUTES], words[H_TARGETS], words[H_BUCKETS])
        if (words[H_SLOT_SIZE], words[H_SIZE]) != (layout.slot_size, layout.size):
            raise ValueError("shm: segment sizes do not match its capacities")
        return layout

    # -- field map (tests, debugging) ------------------------------------------------------
    def fields(self, worker: int) -> Iterator[tuple[str, int, bool]]:
        """Every field of worker slot ``worker`` as (name, byte offset, signed)."""
        base = self.slot_offset(worker)
        yield "active", base + ACTIVE * WORD, True
        yield "accepted", base + ACCEPTED * WORD, False
        yield "duration_sum_us", base + DURATION_SUM * WORD, False
        yield "duration_count", base + DURATION_COUNT * WORD, False
        for b in range(self.buckets):
            yield f"bucket[{b}]", base + (BUCKET0 + b) * WORD, False
        for t in range(self.targets):
            yield f"own_inflight[{t}]", base + (self.own_word + t) * WORD, True
        names = [*CLASSES, "bytes_in", "bytes_out"]
        for r in range(self.routes):
            record = self.route_offset(worker, r)
            for w, name in enumerate(names):
                yield f"route[{r}].{name}", record + w * WORD, False
