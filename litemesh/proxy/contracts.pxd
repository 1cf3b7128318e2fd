# Cython declarations for contracts.py: the interfaces between the compiled modules.

from litemesh.http.request cimport RequestHandler
from litemesh.proxy.deadline cimport TimerWheel
from litemesh.proxy.snapshot cimport Snapshot

cdef class ResponseHandler

cdef class ProxyState:
    cdef public object loop
    cdef public object clock
    cdef public TimerWheel wheel
    cdef public Snapshot snapshot
    cdef public object metrics
    cdef public object new_request_id
    cdef public long long requests


cdef class Downstream(RequestHandler):
    cdef public ProxyState state
    cdef public object loop
    cdef public object transport
    cdef public Snapshot snapshot
    cdef public bytes client_ip
    cdef public bytes scheme
    cdef public bint closing
    cdef public bint writing_paused
    cdef public bytes identity_fields

    cpdef write(self, bytes data)
    cpdef exchange_done(self, ResponseHandler exchange)
    cpdef abort_exchange(self, ResponseHandler exchange)
    cpdef start_tunnel(self, ResponseHandler exchange, object upstream, bytes upstream_rest)
    cpdef pause_reading_for_buffer(self)
    cpdef resume_reading_for_buffer(self)
    cpdef pause_reading_for_upstream(self)
    cpdef resume_reading_for_upstream(self)


cdef class ResponseHandler:
    cdef public Downstream conn
    cdef public int status
    cdef public bint request_done
    cdef public bint close_delimited_upstream

    cpdef on_response_head(self, int status, bytes head, bint upstream_keep)
    cpdef on_response_body(self, bytes data)
    cpdef on_response_end(self)
    cpdef flush(self)
    cpdef on_upstream_error(self, object error)
    cpdef on_upstream_lost(self, object upstream, object exc)
    cpdef on_upstream_upgraded(self, object upstream, bytes rest)
