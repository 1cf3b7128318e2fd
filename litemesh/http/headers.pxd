cimport cython

# Cython declarations for headers.py (pure-Python mode).

cdef class FieldKinds:
    cdef public dict table
    cdef public dict seen
    cdef public Py_ssize_t limit
    cdef public bytes letters
    cdef public Py_ssize_t longest

    cpdef object learn(self, bytes name)
    @cython.locals(length=Py_ssize_t)
    cpdef bint may_hold(self, bytes name)


cdef class RequestIdFactory:
    cdef bytearray _digits

    @cython.locals(digits=bytearray, at=Py_ssize_t, digit=int)
    cpdef bytes next_id(self)


cpdef list connection_tokens(bytes value)
cpdef list upgrade_protocols(bytes value)
@cython.locals(memo=dict)
cpdef frozenset connection_named(bytes value)
cpdef bint valid_host(bytes value)
@cython.locals(memo=dict)
cpdef object routing_host(bytes value)
cpdef bint valid_request_id(bytes value)
