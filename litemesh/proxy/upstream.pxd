cimport cython

# Cython declarations for upstream.py (pure-Python mode).

from litemesh.http.request cimport blank_line
from litemesh.proxy.contracts cimport Downstream, ResponseHandler
from litemesh.proxy.pool cimport UpstreamPool
from litemesh.proxy.deadline cimport Deadline


cdef Py_ssize_t MAX_RESPONSE_HEAD


cdef class UpstreamConnection:
    cdef public UpstreamPool pool
    cdef public object transport
    cdef public object parser
    cdef public ResponseHandler exchange
    cdef public Py_ssize_t requests
    cdef public double idle_since
    cdef public bint got_response
    cdef public Downstream tunnel
    cdef bytes _raw_head
    cdef list _head_parts
    cdef Py_ssize_t _head_have
    cdef bint _interim
    cdef bint _head_seen
    cdef bint _head_only
    cdef bint _complete
    cdef bint _keep
    cdef bint _broken
    cdef Deadline _deadline
    cdef double _read_timeout
    cdef double _write_timeout
    cdef bint _writing_paused
    cdef bint _lost
    cdef bytes _tail

    @cython.locals(cut=Py_ssize_t, size=Py_ssize_t, buf="const unsigned char*")
    cpdef data_received(self, bytes data)
    cpdef bind(self, ResponseHandler exchange, bint head_only, double read_timeout, double write_timeout)
    cpdef send(self, bytes data)
    cpdef close(self)
    cpdef abort(self)
    cdef Py_ssize_t _head_end(self, bytes data) except -2
    cdef _finish(self)
    cdef _fail(self, object error)
    cdef _switch_protocols(self, bytes rest)
