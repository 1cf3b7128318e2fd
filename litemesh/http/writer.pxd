# Cython declarations for writer.py (pure-Python mode).

cpdef bytes date_header()
cpdef bytes reason_phrase(int status)
cpdef bytes chunk(bytes data)
