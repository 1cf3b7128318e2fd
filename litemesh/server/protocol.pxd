# Cython declarations for protocol.py (pure-Python mode).

from litemesh.http.request cimport RequestHead, RequestReader
from litemesh.proxy.contracts cimport Downstream, ResponseHandler
from litemesh.proxy.exchange cimport Exchange, new_exchange
from litemesh.proxy.upstream cimport UpstreamConnection
from litemesh.proxy.deadline cimport Deadline

cdef int _PAUSE_UPSTREAM, _PAUSE_BUFFER, _PAUSE_UPGRADE, _MAX_QUEUED


cdef class DownstreamProtocol(Downstream):
    cdef public RequestReader reader
    cdef public Exchange current
    cdef public list queue
    cdef public Exchange receiving
    cdef public UpstreamConnection tunnel
    cdef int _pause_mask
    cdef Deadline _deadline
    cdef bint _reader_failed
    cdef bint _in_head_timer

    cdef _abandon(self, Exchange exchange)
    cpdef on_request_head(self, RequestHead head)
    cpdef on_request_body(self, bytes data)
    cpdef on_request_end(self)
    cpdef on_request_upgrade(self, bytes rest)
    cpdef write(self, bytes data)
    cpdef exchange_done(self, ResponseHandler exchange)
    cpdef abort_exchange(self, ResponseHandler exchange)
    cpdef start_tunnel(self, ResponseHandler exchange, object upstream, bytes upstream_rest)
    cpdef pause_reading_for_upstream(self)
    cpdef resume_reading_for_upstream(self)
    cpdef pause_reading_for_buffer(self)
    cpdef resume_reading_for_buffer(self)
    cpdef shutdown(self)
    cdef _pause(self, int reason)
    cdef _resume(self, int reason)
    cdef _close(self)
    cdef _fail_reading(self, object error)
    cdef _arm_head_timer(self)
    cdef _arm_keepalive(self)
    cpdef _on_timeout(self)
    cdef _timeout_answer(self)
