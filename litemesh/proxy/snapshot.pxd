# Cython declarations for snapshot.py (pure-Python mode): what the request path reads of a snapshot
# are C fields.

from litemesh.http.request cimport ReaderLimits
from litemesh.proxy.router cimport Router


cdef class Snapshot:
    cdef public long long generation
    cdef public object config
    cdef public Router router
    cdef public dict services
    cdef public ReaderLimits reader_limits
    cdef public object timeouts
    cdef public double client_header_timeout
    cdef public double client_body_timeout
    cdef public double keepalive_timeout
    cdef public double send_timeout
    cdef public bytes request_id_header
    cdef public bytes request_id_prefix
    cdef public bytes via
    cdef public bytes via_field
    cdef public object trusted_proxies
    cdef public bint emit_forwarded
    cdef public bint merge_slashes
    cdef public bint allow_trace
