# cython: language_level=3
"""Compiled twin of :class:`litemesh.algo.trie.RouteTriePy` (same API, same results).

The data structure and algorithm are described in ``litemesh/algo/trie.py``; this file mirrors it
with cdef classes so that the walk is C calls, a slot's rank is four int64 fields compared in C, and
literal children are found with ``PyDict_GetItem``. Validation is not duplicated: ``add`` calls
the shared helpers in :mod:`litemesh.algo._route_pattern`, so both twins raise identical errors.
"""
from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject
from cpython.set cimport PySet_Contains
from libc.stdint cimport int64_t

from litemesh.algo._route_pattern import (
    HOST_ANY, HOST_EXACT, KIND_EXACT, KIND_REGEX, check_int, pack_spec,
    parse_hosts, parse_methods, parse_path,
)

#: distinct hosts remembered by the bucket cache before it is emptied (bounds memory vs. Host spam)
cdef enum:
    HOST_CACHE_SIZE = 4096


cdef class _Slot:
    """One (route, path pattern, host) entry. Rank order: see _beats."""
    cdef int64_t priority, spec, route_id, seq
    cdef frozenset methods      # None = any method
    cdef tuple param_names
    cdef tuple param_pos        # indexes into path.split("/") (0 is the "" before the leading "/")
    cdef object regex_match     # bound Pattern.match, or None for trie slots


cdef inline bint _beats(_Slot a, _Slot b) noexcept:
    """True if ``a`` is selected over ``b``: priority, then spec, then lower route id, then add order."""
    if a.priority != b.priority:
        return a.priority > b.priority
    if a.spec != b.spec:
        return a.spec > b.spec
    if a.route_id != b.route_id:
        return a.route_id < b.route_id
    return a.seq < b.seq


cdef inline _Slot _better(_Slot slot, _Slot other):
    return slot if other is None or _beats(slot, other) else other


cdef list _inserted(list slots, _Slot slot):
    """``slots`` (created if None) with ``slot`` inserted in rank order (best first)."""
    cdef Py_ssize_t lo = 0, hi, mid
    if slots is None:
        return [slot]
    hi = len(slots)
    while lo < hi:
        mid = (lo + hi) >> 1
        if _beats(<_Slot>slots[mid], slot):
            lo = mid + 1
        else:
            hi = mid
    slots.insert(lo, slot)
    return slots


cdef class _Node:
    cdef dict children          # literal segment -> _Node, None until needed
    cdef _Node param            # the one {param} child
    cdef list prefix, slash, exact
    cdef _Slot top              # best slot anywhere in this subtree

    cdef _Node child(self, str seg):
        """The child for literal ``seg`` (the param child for None), created on demand."""
        cdef _Node node
        if seg is None:
            if self.param is None:
                self.param = _Node()
            return self.param
        if self.children is None:
            self.children = {}
        node = self.children.get(seg)
        if node is None:
            node = _Node()
            self.children[seg] = node
        return node


cdef class _Bucket:
    """Everything added for one host key (or for any host)."""
    cdef _Node root
    cdef list regexes
    cdef _Slot top

    def __cinit__(self):
        self.root = _Node()
        self.regexes = []

    cdef void insert(self, _Slot slot, parsed) except *:
        cdef _Node node
        self.top = _better(slot, self.top)
        if parsed.kind == KIND_REGEX:
            _inserted(self.regexes, slot)
            return
        node = self.root
        node.top = _better(slot, node.top)
        for seg in parsed.segments:
            node = node.child(seg)
            node.top = _better(slot, node.top)
        if parsed.kind == KIND_EXACT:
            node.exact = _inserted(node.exact, slot)
        elif parsed.slash:
            node.slash = _inserted(node.slash, slot)
        else:
            node.prefix = _inserted(node.prefix, slot)


cdef inline bint _allows(_Slot slot, str method) except -1:
    return slot.methods is None or PySet_Contains(slot.methods, method) == 1


cdef _Slot _pick(list slots, str method, _Slot best):
    """The first slot of the rank-sorted list that allows ``method`` and beats ``best``."""
    cdef _Slot slot
    cdef Py_ssize_t i
    for i in range(len(slots)):
        slot = <_Slot>slots[i]
        if best is not None and not _beats(slot, best):
            break
        if _allows(slot, method):
            return slot
    return best


cdef _Slot _walk(_Node node, list segs, Py_ssize_t depth, str method, _Slot best):
    """Best slot in ``node``'s subtree for the path segments ``segs[depth:]``."""
    cdef PyObject* child
    cdef str seg
    if best is not None and not _beats(node.top, best):
        return best  # nothing below can win: prune
    if node.prefix is not None:
        best = _pick(node.prefix, method, best)
    if depth < len(segs):
        if node.slash is not None:
            best = _pick(node.slash, method, best)
        seg = <str>segs[depth]
        if node.children is not None:
            child = PyDict_GetItem(node.children, seg)
            if child != NULL:
                best = _walk(<_Node>child, segs, depth + 1, method, best)
        if node.param is not None and len(seg) > 0:
            best = _walk(node.param, segs, depth + 1, method, best)
    elif node.exact is not None:
        best = _pick(node.exact, method, best)
    return best


cdef _params(_Slot slot, list segs, object found):
    cdef dict out
    if slot.regex_match is not None:
        if not slot.param_names:
            return None
        # optional named groups that did not take part are left out rather than mapped to None
        return {name: value for name, value in found.groupdict().items() if value is not None}
    if not slot.param_pos:
        return None
    out = {}
    for name, pos in zip(slot.param_names, slot.param_pos):
        out[name] = segs[pos]
    return out


cdef class RouteTrie:
    """Compiled route table; API and semantics are documented in trie.pyi."""
    cdef _Bucket _any
    cdef dict _exact, _wild, _host_cache
    cdef tuple _any_only        # buckets for every host when no host-restricted route exists
    cdef int64_t _count

    def __cinit__(self):
        self._any = _Bucket()
        self._exact = {}
        self._wild = {}
        self._host_cache = {}
        self._any_only = ()
        self._count = 0

    def __len__(self):
        return self._count

    def add(self, route_id, path, *, hosts=(), methods=(), priority=0):
        """Add one path pattern of route ``route_id``; raise RoutePatternError if anything is invalid."""
        cdef _Slot slot
        rid = check_int("route_id", route_id)
        prio = check_int("priority", priority)
        parsed = parse_path(path)
        host_keys = parse_hosts(hosts) or [("", HOST_ANY)]
        allowed = parse_methods(methods)
        # validated: from here on nothing raises, so a failed add leaves the table untouched
        for key, host_rank in host_keys:
            slot = _Slot()
            slot.priority = prio
            slot.spec = pack_spec(host_rank, parsed)
            slot.route_id = rid
            slot.seq = self._count
            slot.methods = allowed
            slot.param_names = parsed.param_names
            slot.param_pos = tuple([pos + 1 for pos in parsed.param_pos])
            slot.regex_match = parsed.regex.match if parsed.regex is not None else None
            self._bucket(key, host_rank).insert(slot, parsed)
        self._count += 1
        self._host_cache.clear()
        self._any_only = (self._any,) if self._any.top is not None else ()

    cdef _Bucket _bucket(self, str key, int host_rank):
        cdef dict table
        cdef _Bucket bucket
        if host_rank == HOST_ANY:
            return self._any
        table = self._exact if host_rank == HOST_EXACT else self._wild
        bucket = table.get(key)
        if bucket is None:
            bucket = _Bucket()
            table[key] = bucket
        return bucket

    cdef tuple _buckets_for(self, str host):
        """Non-empty buckets that apply to ``host``, most specific first (cached per host)."""
        cdef PyObject* cached
        cdef list found
        cdef Py_ssize_t dot
        if not self._exact and not self._wild:
            return self._any_only
        cached = PyDict_GetItem(self._host_cache, host)
        if cached != NULL:
            return <tuple>cached
        found = []
        bucket = self._exact.get(host)
        if bucket is not None:
            found.append(bucket)
        if self._wild:
            dot = host.find(".", 1)  # "*." needs at least one character before the suffix
            while dot > 0:
                bucket = self._wild.get(host[dot + 1:])
                if bucket is not None:
                    found.append(bucket)
                dot = host.find(".", dot + 1)
        if self._any.top is not None:
            found.append(self._any)
        result = tuple(found)
        if len(self._host_cache) >= HOST_CACHE_SIZE:
            self._host_cache.clear()
        self._host_cache[host] = result
        return result

    def match(self, str host not None, str method not None, str path not None):
        """``(route_id, params)`` of the best entry for the request, or None."""
        cdef tuple buckets = self._buckets_for(host)
        cdef list segs = None
        cdef _Bucket bucket
        cdef _Slot best = None, slot
        cdef object found = None, hit
        cdef Py_ssize_t i
        # path[0] is "/" by contract; anything else can only match a regex
        if len(path) > 0 and path[0] == u"/":
            segs = path.split("/")
        for bucket in buckets:
            if best is not None and not _beats(bucket.top, best):
                continue
            if segs is not None and bucket.root.top is not None:
                best = _walk(bucket.root, segs, 1, method, best)
            for i in range(len(bucket.regexes)):
                slot = <_Slot>bucket.regexes[i]
                if best is not None and not _beats(slot, best):
                    break
                if _allows(slot, method):
                    hit = slot.regex_match(path)
                    if hit is not None:
                        best = slot
                        found = hit
                        break
        if best is None:
            return None
        return best.route_id, _params(best, segs, found)
