# Cython declarations for headers.py (pure-Python mode).

cdef class FieldKinds:
    cdef public dict table
    cdef public dict seen
    cdef public Py_ssize_t limit

    cpdef object learn(self, bytes name)


cdef class RequestIdFactory:
    cdef bytes _prefix
    cdef unsigned long long _counter
