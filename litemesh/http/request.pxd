# Cython declarations for request.py (pure-Python mode): the reader's state is C fields, its
# framing loop works on C integers, and the head is a struct-like object the proxy core reads
# without dictionary lookups.  The httptools callbacks stay Python-visible methods.
cimport cython

from litemesh.http.bytescan cimport blank_line_at, index_of
from litemesh.http.headers cimport FieldKinds, connection_tokens, routing_host, valid_request_id

cdef int _HEAD, _BODY, _CHUNKED, _SWITCHED
cdef Py_ssize_t _LINE_SLACK
cdef int _DROP, _HOST, _CONTENT_LENGTH, _TRANSFER_ENCODING, _CONNECTION, _UPGRADE, _EXPECT
cdef int _XFF, _XFPROTO, _XFHOST, _VIA, _REQUEST_ID, _FORWARDED


cdef class RequestHead:
    cdef public bytes method
    cdef public bytes target
    cdef public bytes version
    cdef public list headers
    cdef public bytes host
    cdef public long long content_length
    cdef public bint chunked
    cdef public bint keep_alive
    cdef public bint expect_continue
    cdef public bytes upgrade
    cdef public list connection
    cdef public bytes forwarded_for
    cdef public bytes forwarded_proto
    cdef public bytes forwarded_host
    cdef public bytes forwarded
    cdef public bytes via
    cdef public bytes request_id
    cdef public str route_host


cdef class ReaderLimits:
    cdef public Py_ssize_t max_request_line
    cdef public Py_ssize_t max_header_size
    cdef public Py_ssize_t max_headers
    cdef public long long max_body_size


cdef class RequestHandler:
    cpdef on_request_head(self, RequestHead head)
    cpdef on_request_body(self, bytes data)
    cpdef on_request_end(self)
    cpdef on_request_upgrade(self, bytes rest)


cdef class RequestReader


cdef class ParserEvents:
    cdef public object parser
    cdef public RequestReader reader


cdef class RequestReader:
    cdef RequestHandler _handler
    cdef ParserEvents _events
    cdef object _parser
    cdef bint _clean
    cdef ReaderLimits _limits
    cdef FieldKinds _special
    cdef RequestHead _head
    cdef object _fault
    cdef Py_ssize_t _header_count
    cdef Py_ssize_t _header_bytes
    cdef long long _body_bytes
    cdef Py_ssize_t _max_head
    cdef Py_ssize_t _max_line
    cdef Py_ssize_t _max_target
    cdef int _state
    cdef Py_ssize_t _have
    cdef list _parts
    cdef bytes _tail
    cdef Py_ssize_t _line
    cdef long long _remaining
    cdef object _chunked
    cdef object _extension_method
    cdef bint _fresh_parser
    cdef bint _http11
    cdef bytes _head_bytes

    cpdef feed(self, bytes data)
    cpdef close(self)
    @cython.locals(idle=list, events=ParserEvents)
    cdef _take_parser(self)
    @cython.locals(idle=list, events=ParserEvents)
    cdef _release_parser(self)
    @cython.locals(events=ParserEvents)
    cdef _drop_parser(self)
    @cython.locals(pos=Py_ssize_t, end=Py_ssize_t, take=Py_ssize_t, cut=Py_ssize_t, state=int)
    cdef _feed(self, bytes data)
    cpdef on_message_begin(self)
    cpdef on_url(self, bytes url)
    cpdef on_headers_complete(self)
    cpdef on_body(self, bytes body)
    cpdef on_message_complete(self)
    @cython.locals(have=Py_ssize_t, cut=Py_ssize_t, end=Py_ssize_t, total=Py_ssize_t)
    cdef Py_ssize_t _feed_head(self, bytes data, Py_ssize_t pos) except -1
    @cython.locals(have=Py_ssize_t, length=Py_ssize_t, found=Py_ssize_t)
    cdef _measure_line(self, bytes piece)
    @cython.locals(have=Py_ssize_t, upto=Py_ssize_t)
    cdef _too_long(self, bytes piece, Py_ssize_t limit)
    cdef _parse_head(self, bytes piece, bytes head, bytes data, Py_ssize_t cut)
    cdef _head_failed(self, object failure, bytes head, bytes data, Py_ssize_t cut)
    cdef _parse_with_stand_in(self, bytes head, bytes data, Py_ssize_t cut)
    cdef _switched(self, bytes data, Py_ssize_t cut)
    cdef _parse(self, bytes data)
    cdef _start_chunked(self)
    cpdef _deliver(self, bytes data)
    cdef _end_body(self)
    cdef _ended(self)
    cdef _note(self, object fault)
    @cython.locals(name=bytes, value=bytes, kind=object, special=FieldKinds)
    cdef _field(self, tuple field)
    cdef _special_header(self, int kind, bytes name, bytes value)
    cdef _drop_connection_named(self, RequestHead head)


cdef bint _COMPILED

@cython.locals(end=Py_ssize_t, at=Py_ssize_t, space=Py_ssize_t)
cdef bint _ends_http11(const unsigned char* buf, bytes data)

@cython.locals(buf="const unsigned char*", end=Py_ssize_t, pos=Py_ssize_t, eol=Py_ssize_t, colon=Py_ssize_t,
               value=Py_ssize_t, fields=list)
cpdef list field_lines(bytes head)

@cython.locals(buf="const unsigned char*")
cpdef Py_ssize_t blank_line(bytes data) except -2
