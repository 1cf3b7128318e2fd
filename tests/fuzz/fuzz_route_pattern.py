"""Fuzz target: route path patterns, from the config check to both route-trie twins (issue 8, point 11).

The input is lines of UTF-8 (invalid sequences become U+FFFD): up to three path patterns, then a
request path (its UTF-8 bytes as the router gets them: decoded as Latin-1, raw and normalized by
``litemesh.http.target.normalize_path``).  Both twins are the pure ``RouteTriePy`` and, when it is
built and allowed, the compiled ``RouteTrieC``.

Invariants (anything else is a finding):

1. the config side never crashes on a pattern: ``route_path_form`` raises only ValueError,
   ``check_path_pattern`` returns an error message instead of raising;
2. a pattern the config check accepts (in the loader's spelling) goes into both twins;
3. the twins agree on every pattern, accepted or not: both take it or both raise
   RoutePatternError (nothing else);
4. both twins give the same match (route id and parameters) for the request path;
5. a literal pattern the config accepts matches a request for itself, spelled as a client sends it
   (non-ASCII percent-encoded) and normalized as the gateway does: the loader's spelling of paths
   and the request normalization agree (checked when no regex is among the patterns).

    python tests/fuzz/fuzz_route_pattern.py [libFuzzer options] CORPUS...   (or tests/fuzz/run.py)
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable

if __name__ == "__main__":
    import atheris

    _instrumented = atheris.instrument_imports
else:   # imported by test_replay.py: atheris need not be installed
    _instrumented = contextlib.nullcontext

with _instrumented():
    from litemesh.algo.trie import RoutePatternError, RouteTrieC, RouteTriePy
    from litemesh.config.loader import check_path_pattern
    from litemesh.config.pathform import encode_non_ascii, route_path_form
    from litemesh.errors import GatewayError
    from litemesh.http.target import normalize_path

TWINS: tuple[Callable[[], Any], ...] = (RouteTriePy,) if RouteTrieC is None else (RouteTriePy, RouteTrieC)
MAX_PATTERNS = 3
#: request paths matched against regex patterns are cut to this length: a pattern like ~(a+)+$ is
#: exponential in the path length (regex routes are trusted config; their backtracking is no finding)
REGEX_PATH_CHARS = 16


def _config_form(pattern: str) -> str | None:
    """The loader's spelling of ``pattern`` if the config check accepts it, else None."""
    try:
        form = route_path_form(pattern)
    except ValueError:
        return None
    names, error = check_path_pattern(form)
    assert isinstance(names, set) and (error is None or isinstance(error, str))
    return form if error is None else None


def _add(trie: Any, route_id: int, pattern: str) -> str | None:
    """Add to one twin; the error message if it refused (RoutePatternError is the only refusal)."""
    try:
        trie.add(route_id, pattern)
    except RoutePatternError as exc:
        return str(exc)
    return None


def _self_request(form: str) -> str | None:
    """For a literal prefix or exact form, a request path it must match (as the router gets it)."""
    if form[:1] == "~" or "{" in form:
        return None
    path = form.lstrip("=")
    if form[:1] != "=" and path.endswith("/") and path != "/":
        path += "x"   # "/a/" needs something after the slash
    try:
        return normalize_path(encode_non_ascii(path).encode("ascii")).decode("latin-1")
    except GatewayError:
        return None


def check(data: bytes) -> None:
    lines = data.decode("utf-8", "replace").split("\n")
    patterns, request = lines[:-1][:MAX_PATTERNS], lines[-1]
    tries = [twin() for twin in TWINS]
    literal_requests = []
    for route_id, pattern in enumerate(patterns):
        form = _config_form(pattern)
        candidate = form if form is not None else pattern
        refusals = [_add(trie, route_id, candidate) for trie in tries]
        assert len(set(refusals)) == 1, f"the twins disagree on {candidate!r}: {refusals}"
        assert form is None or refusals[0] is None, f"config accepts {pattern!r} as {form!r}, the trie: {refusals[0]}"
        if form is not None:
            literal_requests.append(_self_request(form))

    raw = request.encode("utf-8").decode("latin-1")
    paths = [raw]
    try:
        paths.append(normalize_path(request.encode("utf-8")).decode("latin-1"))
    except GatewayError:
        pass
    if any(p[:1] == "~" for p in patterns):
        paths = [p[:REGEX_PATH_CHARS] for p in paths]
        literal_requests = []   # whole paths would reach the regexes too
    for path in paths + [p for p in literal_requests if p is not None]:
        found = [trie.match("h", "GET", path) for trie in tries]
        assert all(f == found[0] for f in found), f"the twins match {path!r} differently: {found}"
    for path in literal_requests:
        if path is not None:
            assert tries[0].match("h", "GET", path) is not None, f"no route for {path!r}, a request for itself"


if __name__ == "__main__":
    from tests.fuzz.targets import main

    main(check)
