# cython: language_level=3
"""Compiled twin of :mod:`litemesh.shm._view_py` (same API, same bytes in the segment).

Every offset comes from the :class:`litemesh.shm.layout.Layout` passed in; the word indexes are
read from ``litemesh.shm.layout`` at construction, so this file holds no layout constant. The
view keeps a buffer export on the mmap, so the mapping cannot be closed under its pointers:
``release()`` drops it and turns every method into a no-op.
"""
from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.long cimport PyLong_AsLongLongAndOverflow
from libc.math cimport llrint
from libc.stdint cimport INT64_MAX, int64_t, uint64_t, uintptr_t
from libc.stdlib cimport free, malloc

from litemesh.shm import layout as _layout

cdef extern from "lm_atomic.h":
    int64_t lm_atomic_add_i64(int64_t *p, int64_t delta) nogil
    int64_t lm_load_i64(const int64_t *p) nogil
    uint64_t lm_load_u64(const uint64_t *p) nogil
    void lm_relaxed_add_u64(uint64_t *p, uint64_t delta) nogil
    void lm_relaxed_add_i64(int64_t *p, int64_t delta) nogil

cdef Py_ssize_t WORD = _layout.WORD
#: see _view_py.MAX_DURATION_US
cdef double MAX_DURATION_US = 4611686018427387904.0  # 2.0 ** 62


cdef inline long long _clamp(object value, long long lo, long long hi) except? -1:
    """``value`` as a C integer clamped to [lo, hi]; ints beyond 64 bits clamp instead of raising."""
    cdef int overflow = 0
    cdef long long x = PyLong_AsLongLongAndOverflow(value, &overflow)
    if overflow > 0 or x > hi:
        return hi
    if overflow < 0 or x < lo:
        return lo
    return x


cdef inline char *_at(char *start, Py_ssize_t word) noexcept:
    return start + word * WORD


cdef char *_words(Py_buffer *view, object buf, int flags, Py_ssize_t offset, Py_ssize_t nbytes) except NULL:
    """Export ``buf`` into ``view`` and return the aligned address at ``offset``; checks the range."""
    PyObject_GetBuffer(buf, view, flags)
    if offset < 0 or offset + nbytes > view.len or (<uintptr_t>view.buf + <uintptr_t>offset) % WORD:
        PyBuffer_Release(view)
        raise ValueError(f"shm: offset {offset} (+{nbytes}) is unaligned or outside the segment")
    return <char *>view.buf + offset


def atomic_add(buf, int fd, Py_ssize_t offset, long long delta) -> int:
    """Add ``delta`` to the int64 at byte ``offset`` atomically across processes; return the new value."""
    cdef Py_buffer view
    cdef int64_t *p = <int64_t *>_words(&view, buf, PyBUF_WRITABLE, offset, WORD)
    cdef int64_t value = lm_atomic_add_i64(p, delta)
    PyBuffer_Release(&view)
    return value


def accumulate(buf, Py_ssize_t offset, acc, Py_ssize_t start, Py_ssize_t count) -> None:
    """``acc[start:start+count] += words at byte offset`` (uint64, wrapping), for summing slots."""
    cdef Py_buffer src, dst
    cdef const uint64_t *s
    cdef uint64_t *d
    cdef Py_ssize_t i
    if count < 0:
        raise ValueError("shm: negative count")
    s = <const uint64_t *>_words(&src, buf, PyBUF_SIMPLE, offset, count * WORD)
    try:
        d = <uint64_t *>_words(&dst, acc, PyBUF_WRITABLE, start * WORD, count * WORD)
    except BaseException:
        PyBuffer_Release(&src)
        raise
    with nogil:
        for i in range(count):
            d[i] += lm_load_u64(s + i)
    PyBuffer_Release(&dst)
    PyBuffer_Release(&src)


cdef class WorkerMetrics:
    """The writer of one worker slot (see ``shm.pyi`` for the method contracts; fields in shm.pxd).

    Compiled callers (the exchange) use ``record`` and ``inflight_add``, C calls with C numbers;
    ``request``, ``inflight_begin`` and ``inflight_end`` take any Python int and clamp it first."""

    def __cinit__(self):
        self._held = False
        self._bounds = NULL

    def __init__(self, buf, int fd, layout, Py_ssize_t index):
        cdef Py_ssize_t base = layout.slot_offset(index)  # IndexError for a bad slot
        cdef char *p
        cdef char *slot
        cdef Py_ssize_t i
        bounds = tuple(layout.bounds)
        self._release()
        self._bounds = <double *>malloc(max(len(bounds), 1) * sizeof(double))
        if self._bounds == NULL:
            raise MemoryError()
        for i in range(len(bounds)):
            self._bounds[i] = bounds[i]
        self._nbounds = len(bounds)
        p = _words(&self._view, buf, PyBUF_WRITABLE, 0, layout.size)
        self._held = True
        self.index = index
        slot = p + base
        self._active = <int64_t *>_at(slot, _layout.ACTIVE)
        self._accepted = <uint64_t *>_at(slot, _layout.ACCEPTED)
        self._sum = <uint64_t *>_at(slot, _layout.DURATION_SUM)
        self._count = <uint64_t *>_at(slot, _layout.DURATION_COUNT)
        self._buckets = <uint64_t *>_at(slot, _layout.BUCKET0)
        self._own = <int64_t *>_at(slot, layout.own_word)
        self._routes = <uint64_t *>_at(slot, layout.routes_word)
        self._shared = <int64_t *>_at(p, layout.inflight_offset // WORD)
        self._nroutes = layout.routes
        self._ntargets = layout.targets
        self._route_words = _layout.ROUTE_WORDS
        self._class0 = _layout.ROUTE_CLASS0
        self._last_class = len(_layout.CLASSES) - 1
        self._bytes_in = _layout.ROUTE_BYTES_IN
        self._bytes_out = _layout.ROUTE_BYTES_OUT

    def __dealloc__(self):
        self._release()

    cdef void _release(self) noexcept:
        if self._held:
            self._held = False
            PyBuffer_Release(&self._view)
        if self._bounds != NULL:
            free(self._bounds)
            self._bounds = NULL

    def request(self, route, status, double duration, bytes_in, bytes_out) -> None:
        if self._held:
            self.record(_clamp(route, -1, self._nroutes), _clamp(status, 0, 1000), duration,
                        _clamp(bytes_in, 0, INT64_MAX), _clamp(bytes_out, 0, INT64_MAX))

    cpdef void record(self, long long route, long long status, double duration, long long bytes_in,
                      long long bytes_out) noexcept:
        """Count one finished request (C numbers: the compiled exchange's call)."""
        cdef long long cls
        cdef uint64_t *rec
        cdef double micros
        cdef Py_ssize_t b = 0
        if not self._held:
            return
        if route < 0 or route >= self._nroutes:
            route = 0
        if status < 0:
            status = 0
        cls = (status if status <= 1000 else 1000) // 100 - 1
        if cls < 0 or cls > self._last_class:
            cls = self._last_class
        rec = self._routes + route * self._route_words
        lm_relaxed_add_u64(rec + self._class0 + cls, 1)
        lm_relaxed_add_u64(rec + self._bytes_in, <uint64_t>(bytes_in if bytes_in > 0 else 0))
        lm_relaxed_add_u64(rec + self._bytes_out, <uint64_t>(bytes_out if bytes_out > 0 else 0))
        if not duration >= 0.0:  # negative or NaN
            duration = 0.0
        micros = duration * 1e6
        if micros > MAX_DURATION_US:
            micros = MAX_DURATION_US
        lm_relaxed_add_u64(self._sum, <uint64_t>llrint(micros))  # round-half-even, as Python round()
        while b < self._nbounds and duration > self._bounds[b]:
            b += 1
        lm_relaxed_add_u64(self._buckets + b, 1)
        lm_relaxed_add_u64(self._count, 1)

    def connection_opened(self) -> None:
        if self._held:
            lm_relaxed_add_i64(self._active, 1)
            lm_relaxed_add_u64(self._accepted, 1)

    def connection_closed(self) -> None:
        if self._held:
            lm_relaxed_add_i64(self._active, -1)

    def inflight_begin(self, target) -> None:
        if self._held:
            self.inflight_add(_clamp(target, -1, self._ntargets), 1)

    def inflight_end(self, target) -> None:
        if self._held:
            self.inflight_add(_clamp(target, -1, self._ntargets), -1)

    cpdef void inflight_add(self, long long target, long long delta) noexcept:
        """Add ``delta`` to target ``target``'s in-flight count, shared and own (C numbers)."""
        if self._held and 0 <= target < self._ntargets:
            lm_atomic_add_i64(self._shared + target, delta)
            lm_relaxed_add_i64(self._own + target, delta)

    def inflight(self, target) -> int:
        cdef long long t
        if not self._held:
            return 0
        t = _clamp(target, -1, self._ntargets)
        if 0 <= t < self._ntargets:
            return lm_load_i64(self._shared + t)
        return 0

    def release(self) -> None:
        self._release()
