cimport cython

# Cython declarations for exchange.py (pure-Python mode).

from litemesh.http.headers cimport connection_named, connection_tokens, routing_host, upgrade_protocols
from litemesh.http.request cimport RequestHead
from litemesh.http.target cimport routing_paths, split_target
from litemesh.http.writer cimport chunk, date_header, join, status_line
from litemesh._speedups.shm cimport WorkerMetrics
from litemesh.filters.context cimport RequestContext
from litemesh.http.bytescan cimport index_of
from litemesh.proxy.contracts cimport Downstream, ResponseHandler
from litemesh.proxy.router cimport LocalReply, Route, RouteEntry, Router
from litemesh.proxy.service cimport Service, Target
from litemesh.proxy.snapshot cimport Snapshot
from litemesh.proxy.upstream cimport UpstreamConnection

cdef int _CONTENT_LENGTH, _TRANSFER_ENCODING, _CONNECTION, _UPGRADE, _DROP, _DATE
cdef Py_ssize_t _LONGEST_SPECIAL
cdef bytes _FIRST_LETTERS
cdef bint _COMPILED

cdef Py_ssize_t _index(const unsigned char* buf, bytes head, int byte, Py_ssize_t start, Py_ssize_t end)


cdef class Exchange(ResponseHandler):
    cdef public RequestHead head
    cdef public Snapshot snapshot
    cdef public bytes request_id
    cdef public RouteEntry entry
    cdef public object params
    cdef public bytes upstream_path
    cdef public bytes query
    cdef public Target target
    cdef public UpstreamConnection upstream
    cdef public bytes upstream_head
    cdef public list body_buffer
    cdef public Py_ssize_t body_buffered
    cdef public bint body_sent
    cdef public bint response_started
    cdef public bint done
    cdef public bint head_only
    cdef public bint keep_alive
    cdef public list out
    cdef public bint out_chunked
    cdef public int tries
    cdef public bytes upgrade_rest
    cdef public bint discard_body
    cdef public object local_error
    cdef public double read_timeout
    cdef public double write_timeout
    cdef public bint continue_sent
    cdef public double started
    cdef public long long bytes_in
    cdef public long long bytes_out
    cdef public Py_ssize_t inflight_slot
    cdef public RequestContext context

    cdef _init(self, Downstream conn, RequestHead head, Snapshot snapshot)
    @cython.locals(context=RequestContext)
    cpdef start(self)
    @cython.locals(router=Router, methods=dict)
    cdef object _route(self)
    cdef _keep_allowed_upgrades(self, frozenset allowed)
    @cython.locals(metrics=WorkerMetrics, target=Target, service=Service)
    cdef _forward(self, Route route)
    cdef _connect_or_reuse(self)
    cdef _attach(self, UpstreamConnection upstream)
    @cython.locals(parts=list, head=RequestHead, conn=Downstream, identity=bytes)
    cpdef bytes _upstream_head(self, Route route, bytes target_host)  # (cpdef: bench/micro times it)
    cpdef on_body(self, bytes data)
    cpdef on_end(self)
    cdef _body_out(self, bytes data)
    @cython.locals(buf="const unsigned char*", start=Py_ssize_t, line_end=Py_ssize_t, run=Py_ssize_t,
                   pos=Py_ssize_t, end=Py_ssize_t, eol=Py_ssize_t, colon=Py_ssize_t, length=Py_ssize_t,
                   value_start=Py_ssize_t, value_end=Py_ssize_t, kind=object, seen=dict, filters=bint,
                   context=RequestContext,
                   letters="const unsigned char*")
    cpdef on_response_head(self, int status, bytes head, bint upstream_keep)
    @cython.locals(context=RequestContext)
    cdef _rebuilt_head(self, int status, bytes reason, bytes head, Py_ssize_t fields_start)
    @cython.locals(parts=list, head=RequestHead)
    cdef _write_head(self, int status, bytes reason, list kept, bint dated, bytes content_length, bint chunked,
                     bytes upgrade)
    cdef _check_switch(self, list headers)
    cpdef on_response_body(self, bytes data)
    cpdef flush(self)
    cpdef on_response_end(self)
    cpdef on_upstream_upgraded(self, object upstream, bytes rest)
    cpdef on_upstream_error(self, object error)
    cpdef on_upstream_lost(self, object upstream, object exc)
    @cython.locals(context=RequestContext)
    cpdef respond_local(self, LocalReply reply)
    cpdef respond_error(self, object error)
    cdef _settle_unread_body(self)
    cdef _finished(self)
    cpdef abort(self)
    @cython.locals(metrics=WorkerMetrics, entry=RouteEntry)
    cdef _account(self)


@cython.locals(exchange=Exchange)
cpdef Exchange new_exchange(Downstream conn, RequestHead head, Snapshot snapshot)
