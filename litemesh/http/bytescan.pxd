# Byte scans for the compiled modules, inlined where they are cimported (no module of its own):
# libc's memchr finds a byte with vector instructions where a C loop takes one byte per step.
# Each caller keeps a pure-Python twin of its own (bytes.find), run by the pure build.

from libc.string cimport memchr


cdef inline Py_ssize_t index_of(const unsigned char* buf, int byte, Py_ssize_t start, Py_ssize_t end) noexcept:
    """Where ``byte`` first occurs in ``buf[start:end]``, or ``end``."""
    cdef const unsigned char* found
    if start >= end:
        return end
    found = <const unsigned char*>memchr(buf + start, byte, end - start)
    return end if found == NULL else found - buf


cdef inline Py_ssize_t blank_line_at(const unsigned char* buf, Py_ssize_t start, Py_ssize_t end) noexcept:
    """Where the first CR LF CR LF in ``buf[start:end]`` begins, or -1."""
    cdef Py_ssize_t at = start
    while at + 3 < end:
        at = index_of(buf, 13, at, end - 3)
        if at == end - 3:
            return -1
        if buf[at + 1] == 10 and buf[at + 2] == 13 and buf[at + 3] == 10:
            return at
        at += 1
    return -1
