cimport cython
from litemesh.http.bytescan cimport index_of

# Cython declarations for target.py (pure-Python mode).

cpdef tuple split_target(bytes target)
cpdef tuple routing_paths(bytes path, bint merge_slashes=*)
cpdef bytes normalize_path(bytes path, bint merge_slashes=*)

cdef bint _COMPILED

@cython.locals(buf="const unsigned char*", end=Py_ssize_t, at=Py_ssize_t, byte=int)
cdef bint _any_work(bytes path) except -1
@cython.locals(buf="const unsigned char*", end=Py_ssize_t, at=Py_ssize_t)
cdef Py_ssize_t _find(bytes data, int byte) except -2
