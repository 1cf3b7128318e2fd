cimport cython
# Cython declarations for pool.py (pure-Python mode).

from litemesh.proxy.deadline cimport TimerWheel

cdef class UpstreamPool:
    cdef public object loop
    cdef public object clock
    cdef public TimerWheel wheel
    cdef public str host
    cdef public int port
    cdef public Py_ssize_t max_idle
    cdef public double idle_timeout
    cdef public Py_ssize_t max_requests
    cdef public double connect_timeout
    cdef public list idle
    cdef object _sweep
    cdef public Py_ssize_t opened
    cdef public bint closed
    cdef public object resolver
    cdef list _to_open
    cdef bint _opening_turn

    cpdef open_soon(self, object start)
    cpdef _open_some(self)
    cpdef object acquire(self)
    cpdef release(self, object conn)
    cpdef discard(self, object conn)
