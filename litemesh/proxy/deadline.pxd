cimport cython

# Cython declarations for deadline.py (pure-Python mode): compiled, Deadline and TimerWheel are
# cdef classes whose set/clear/cancel/add are C calls from the other compiled modules.

cdef double RESOLUTION


cdef class TimerWheel:
    cdef public object clock
    cdef object _loop
    cdef dict _slots
    cdef list _keys
    cdef object _handle
    cdef long long _armed

    @cython.locals(key="long long", waiting=list)
    cpdef long long add(self, Deadline deadline, double when) except -1
    @cython.locals(waiting=list, index=Py_ssize_t)
    cpdef discard(self, Deadline deadline, long long key)
    cdef _arm(self, long long key)
    @cython.locals(now=double, keys=list, key="long long", deadline=Deadline)
    cpdef _tick(self)


cdef class Deadline:
    cdef TimerWheel _wheel
    cdef readonly object _callback  # (tests look at it)
    cdef double _when
    cdef long long _slot

    @cython.locals(wheel=TimerWheel, when=double)
    cpdef void set(self, double delay) except *
    cpdef void clear(self)
    cpdef void cancel(self)
    @cython.locals(when=double, callback=object)
    cdef void _due(self, long long key, double now) except *
