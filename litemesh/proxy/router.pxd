# Cython declarations for router.py (pure-Python mode).

from litemesh.proxy.service cimport Service


cdef class LocalReply:
    cdef public int status
    cdef public object headers
    cdef public bytes body


cdef class Route:
    cdef public str name
    cdef public Service service
    cdef public LocalReply reply
    cdef public bint preserve_host
    cdef public tuple request_filters
    cdef public tuple response_filters
    cdef public Py_ssize_t metric_slot
    cdef public frozenset upgrades


cdef class RouteEntry:
    cdef public Route route
    cdef public str pattern
    cdef public tuple request_filters
    cdef public tuple response_filters


cdef class Router:
    cdef public object trie
    cdef public list entries

    cpdef object match(self, str host, str method, str path)
