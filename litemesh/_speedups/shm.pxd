# The compiled metrics writer as the compiled request path sees it: record and inflight_add are C
# calls with C numbers (no method lookup, no int objects) from the exchange.

from libc.stdint cimport int64_t, uint64_t


cdef class WorkerMetrics:
    cdef Py_buffer _view
    cdef bint _held
    cdef readonly Py_ssize_t index
    cdef int64_t *_active
    cdef uint64_t *_accepted
    cdef uint64_t *_sum
    cdef uint64_t *_count
    cdef uint64_t *_buckets
    cdef int64_t *_own
    cdef int64_t *_shared
    cdef uint64_t *_routes
    cdef double *_bounds
    cdef Py_ssize_t _nbounds, _nroutes, _ntargets, _route_words, _class0, _last_class, _bytes_in, _bytes_out

    cdef void _release(self) noexcept
    cpdef void record(self, long long route, long long status, double duration, long long bytes_in,
                      long long bytes_out) noexcept
    cpdef void inflight_add(self, long long target, long long delta) noexcept
