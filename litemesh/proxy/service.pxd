# Cython declarations for service.py (pure-Python mode).

from litemesh.proxy.pool cimport UpstreamPool


cdef class Target:
    cdef public str host
    cdef public int port
    cdef public str address
    cdef public int weight
    cdef public UpstreamPool pool
    cdef public bytes host_header
    cdef public Py_ssize_t inflight_slot


cdef class RoundRobin:
    cdef tuple _targets
    cdef list _order
    cdef Py_ssize_t _next

    cpdef Target pick(self)


cdef class Service:
    cdef public str name
    cdef public tuple targets
    cdef public RoundRobin balancer
    cdef public double connect_timeout
    cdef public double read_timeout
    cdef public double write_timeout
