# Cython declarations for target.py (pure-Python mode).

cpdef tuple split_target(bytes target)
cpdef tuple routing_paths(bytes path, bint merge_slashes=*)
cpdef bytes normalize_path(bytes path, bint merge_slashes=*)
