cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.string cimport memcpy

# Cython declarations for writer.py (pure-Python mode).

cdef bint _COMPILED

cpdef bytes date_header()
cpdef bytes reason_phrase(int status)
@cython.locals(reasons=dict, lines=dict, line=bytes)
cpdef bytes status_line(int status, bytes reason)
cpdef bytes chunk(bytes data)
cpdef bytes join(list parts)


cdef inline bytes _c_join(list parts):
    """join's compiled body: the length first, then one memcpy per part into the new bytes."""
    cdef Py_ssize_t total = 0
    cdef Py_ssize_t size
    cdef bytes part
    for part in parts:
        if part is None:  # (a typed bytes variable admits None, which has no size)
            raise TypeError("join: a part is None, not bytes")
        total += PyBytes_GET_SIZE(part)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, total)
    cdef char* at = PyBytes_AS_STRING(out)
    for part in parts:
        size = PyBytes_GET_SIZE(part)
        memcpy(at, PyBytes_AS_STRING(part), size)
        at += size
    return out
