# Cython declarations for context.py (pure-Python mode): the context is a typed object the exchange
# fills with C stores; Filter stays a Python class (filters subclass it in Python).

cdef class RequestContext:
    cdef public bytes method
    cdef public bytes path
    cdef public bytes query
    cdef public object params
    cdef public list headers
    cdef public bytes client_ip
    cdef public str route
    cdef public bytes request_id
    cdef public object reply
    cdef public list response_headers
