# Cython declarations for deadline.py (pure-Python mode): compiled, Deadline is a cdef class whose
# set/clear/cancel are C calls from the other compiled modules.

cdef class Deadline:
    cdef object _loop
    cdef object _clock
    cdef object _callback
    cdef double _when
    cdef readonly object _handle  # (tests look at it)
    cdef double _scheduled

    cpdef void set(self, double delay) except *
    cpdef void clear(self)
    cpdef void cancel(self) except *
    cpdef void _fire(self) except *
