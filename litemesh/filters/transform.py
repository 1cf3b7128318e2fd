"""Path transforms: ``strip_prefix`` and ``rewrite`` templates, applied before forwarding."""
from __future__ import annotations

import re

from .context import Filter, RequestContext

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class PathRewrite(Filter):
    """Replaces the matched part of the path (``strip_segments`` leading segments, or the whole
    path for exact and regex patterns) by ``template`` with ``{param}`` filled in; the rest of a
    prefix match and the query string are kept.  An empty template is ``strip_prefix``.
    """

    __slots__ = ("strip_segments", "whole_path", "parts")

    def __init__(self, template: str, strip_segments: int, whole_path: bool) -> None:
        self.strip_segments = strip_segments
        self.whole_path = whole_path
        # template "/v2/{id}/x" -> ["/v2/", ("id",), "/x"]: literal bytes and param names alternate
        self.parts: list[bytes | tuple[str]] = []
        last = 0
        for match in _PARAM.finditer(template):
            self.parts.append(template[last:match.start()].encode())
            self.parts.append((match.group(1),))
            last = match.end()
        self.parts.append(template[last:].encode())

    def on_request(self, context: RequestContext) -> None:
        context.path = self.apply(context.path, context.params)

    def apply(self, path: bytes, params: dict[str, str] | None) -> bytes:
        head = b"".join(
            part if isinstance(part, bytes) else (params or {}).get(part[0], "").encode("latin-1")
            for part in self.parts
        )
        rest = b"" if self.whole_path else _after_segments(path, self.strip_segments)
        if head.endswith(b"/") and rest.startswith(b"/"):
            rest = rest[1:]
        result = head + rest
        return result if result.startswith(b"/") else b"/" + result


def _after_segments(path: bytes, count: int) -> bytes:
    """``/a/b/c`` after 2 segments → ``/c``; after all of them → ``""``."""
    if count == 0:
        return path
    parts = path.split(b"/", count + 1)
    return b"/" + parts[count + 1] if len(parts) > count + 1 else b""
