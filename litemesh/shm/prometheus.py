"""``/metrics``: the segment's totals in the Prometheus text exposition format, version 0.0.4.

Only series that are non-zero or belong to a named slot are written, so a 10,000-slot capacity
with a few hundred routes in use stays a short page. Route slot 0 ("no route matched", plus any
names that did not fit) is labelled ``route=""`` unless ``route_names`` names it; an unnamed
non-zero slot ``n`` is labelled ``"#n"``. The histogram's ``_count`` is its ``+Inf`` bucket, so the
two agree even when a scrape races a worker between its bucket and count stores.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping

from .layout import CLASSES, ROUTE_BYTES_IN, ROUTE_BYTES_OUT, ROUTE_CLASS0, ROUTE_WORDS
from .segment import Segment, Totals

__all__ = ["render", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_EMPTY: Mapping[str, float] = {}


def escape(value: str) -> str:
    """A label value as the exposition format quotes it (backslash, double quote, newline)."""
    if "\\" in value or '"' in value or "\n" in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def number(value: float) -> str:
    """A sample value: ints exactly, floats by repr, infinities and NaN as Prometheus spells them."""
    if isinstance(value, int):
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _family(out: list[str], name: str, kind: str, help_text: str) -> None:
    out.append(f"# HELP {name} {help_text}")
    out.append(f"# TYPE {name} {kind}")


def _labels(names: Mapping[int, str], capacity: int, in_use: list[int]) -> dict[int, tuple[str, bool]]:
    """slot -> (escaped label, named) for the slots to write, in slot order."""
    chosen = {slot: (escape(name), True) for slot, name in names.items() if 0 <= slot < capacity}
    for slot in in_use:
        if slot not in chosen:
            chosen[slot] = ("" if slot == 0 else f"#{slot}", False)
    return dict(sorted(chosen.items()))


def _routes_in_use(totals: Totals) -> list[int]:
    words = totals.route_words
    return [r for r in range(totals.layout.routes) if any(words[r * ROUTE_WORDS:(r + 1) * ROUTE_WORDS])]


def _route_series(out: list[str], totals: Totals, routes: dict[int, tuple[str, bool]]) -> None:
    words = totals.route_words
    _family(out, "litemesh_requests_total", "counter", "Requests answered, by route and status class.")
    for slot, (label, named) in routes.items():
        base = slot * ROUTE_WORDS + ROUTE_CLASS0
        for c, cls in enumerate(CLASSES):
            value = words[base + c]
            if value or named:
                out.append(f'litemesh_requests_total{{route="{label}",code_class="{cls}"}} {value}')
    for word, name, what in ((ROUTE_BYTES_IN, "litemesh_request_bytes_received_total", "Request body bytes received"),
                             (ROUTE_BYTES_OUT, "litemesh_request_bytes_sent_total", "Response bytes sent")):
        _family(out, name, "counter", f"{what}, by route.")
        for slot, (label, named) in routes.items():
            value = words[slot * ROUTE_WORDS + word]
            if value or named:
                out.append(f'{name}{{route="{label}"}} {value}')


def _histogram(out: list[str], totals: Totals) -> None:
    name = "litemesh_request_duration_seconds"
    _family(out, name, "histogram", "Request duration in seconds, from the request head to the end of the response.")
    running = 0
    for bound, count in zip((*totals.layout.bounds, math.inf), totals.buckets):
        running += count
        out.append(f'{name}_bucket{{le="{number(bound)}"}} {running}')
    out.append(f"{name}_sum {number(totals.duration_sum)}")
    out.append(f"{name}_count {running}")


def render(segment: Segment, route_names: Mapping[int, str], target_names: Mapping[int, str],
           extra: Mapping[str, float] = _EMPTY) -> str:
    """The whole ``/metrics`` page for ``segment``.

    ``route_names``/``target_names`` map slots to names (``SlotNames.by_slot()``); ``extra`` adds
    one gauge per item (ValueError for an invalid metric name).
    """
    totals = segment.totals()
    out: list[str] = []
    _route_series(out, totals, _labels(route_names, totals.layout.routes, _routes_in_use(totals)))
    _histogram(out, totals)
    _family(out, "litemesh_connections_active", "gauge", "Downstream connections open now.")
    out.append(f"litemesh_connections_active {totals.connections_active}")
    _family(out, "litemesh_connections_accepted_total", "counter", "Downstream connections accepted.")
    out.append(f"litemesh_connections_accepted_total {totals.connections_accepted}")
    _family(out, "litemesh_upstream_in_flight", "gauge", "Requests in flight to each upstream target, all workers.")
    in_use = [t for t, value in enumerate(totals.inflight) if value]
    for slot, (label, _named) in _labels(target_names, totals.layout.targets, in_use).items():
        out.append(f'litemesh_upstream_in_flight{{target="{label}"}} {totals.inflight[slot]}')
    for name, value in extra.items():
        if not _METRIC_NAME.match(name):
            raise ValueError(f"invalid metric name {name!r}")
        _family(out, name, "gauge", f"{name.replace('_', ' ')}.")
        out.append(f"{name} {number(value)}")
    out.append("")
    return "\n".join(out)
