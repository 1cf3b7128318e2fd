"""Compiled shared-memory metrics writer; the pure-Python twin is ``litemesh.shm._view_py``.

Use ``litemesh.shm.Segment.worker(i)`` rather than this module: ``litemesh.shm.view`` picks this
module when the extension was built and ``LITEMESH_NO_EXTENSIONS`` is unset, else the twin. Both
write the same bytes, at the offsets of ``litemesh.shm.layout.Layout``. The processes sharing a
segment must all use the same twin (atomic adds here, record locks there).
"""
from array import array
from mmap import mmap

from litemesh.shm.layout import Layout

def atomic_add(buf: mmap, fd: int, offset: int, delta: int) -> int:
    """Add ``delta`` to the int64 at byte ``offset`` atomically across processes; return the new value.

    Raises ValueError if ``offset`` is unaligned or outside ``buf``.
    """

def accumulate(buf: mmap, offset: int, acc: array[int], start: int, count: int) -> None:
    """``acc[start:start+count] += `` the ``count`` uint64 words at byte ``offset`` of ``buf``.

    ``acc`` is an ``array("Q")``; sums wrap modulo 2**64. Raises ValueError for a bad range.
    """

class WorkerMetrics:
    """The writer of worker slot ``index``: plain (relaxed) stores, since only this worker writes it.

    Never raises for bad indices or sizes: the data plane must not fail on a metric. After
    ``release()`` (``Segment.close()`` calls it) every method is a no-op.
    """

    index: int

    def __init__(self, buf: mmap, fd: int, layout: Layout, index: int) -> None:
        """A view on ``buf`` (the segment's mapping, exported until release) for slot ``index``.

        ``fd`` is the segment's fd (the pure twin locks it). IndexError for a bad ``index``.
        """
    def request(self, route: int, status: int, duration: float, bytes_in: int, bytes_out: int) -> None:
        """Count one finished request.

        ``route`` outside [0, R) counts in route slot 0; ``status`` outside 100-599 counts as 5xx;
        ``duration`` in seconds (negative or NaN counts as 0) goes to the histogram and, rounded
        to microseconds, to its sum; byte counts are clamped to [0, 2**63-1].
        """
    def record(self, route: int, status: int, duration: float, bytes_in: int, bytes_out: int) -> None:
        """``request`` for numbers that fit a C long long (the compiled exchange's C call)."""
    def inflight_add(self, target: int, delta: int) -> None:
        """Add ``delta`` to target ``target``'s in-flight count (the compiled exchange's C call)."""
    def connection_opened(self) -> None:
        """One more active connection and one more accepted."""
    def connection_closed(self) -> None:
        """One less active connection."""
    def inflight_begin(self, target: int) -> None:
        """Atomically +1 on target's shared in-flight counter (and this worker's share); bad target: no-op."""
    def inflight_end(self, target: int) -> None:
        """Atomically -1 on target's shared in-flight counter (and this worker's share); bad target: no-op."""
    def inflight(self, target: int) -> int:
        """Target's shared in-flight count, all workers together (0 for a bad target)."""
    def release(self) -> None:
        """Drop the buffer export; later calls do nothing."""
