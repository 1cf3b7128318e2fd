"""The filter contract: small objects built once per route when a snapshot is compiled.

Request phase, in configuration order:  ``on_request(exchange)`` may rewrite the exchange's upstream
path/headers, or short-circuit by returning a :class:`~litemesh.proxy.router.LocalReply` (the
chain stops, the proxy step is skipped).  Response phase, in reverse order:
``on_response_head(exchange, status, headers)`` may edit the response header list in place.
Base hooks are no-ops, and a route whose filters do not override a hook skips it entirely:
:func:`split_chain` keeps only the filters that implement each phase, so the per-request loop runs
over exactly the work configured.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from .exchange import Exchange
    from .router import LocalReply


class Filter:
    __slots__ = ()

    def on_request(self, exchange: "Exchange") -> "LocalReply | None":
        return None

    def on_response_head(self, exchange: "Exchange", status: int, headers: list[tuple[bytes, bytes]]) -> None:
        return None


def split_chain(filters: Sequence[Filter]) -> tuple[tuple[Filter, ...], tuple[Filter, ...]]:
    """``(request_hooks_in_order, response_hooks_in_reverse)``, each with only the filters that act."""
    request = tuple(f for f in filters if type(f).on_request is not Filter.on_request)
    response = tuple(f for f in reversed(filters) if type(f).on_response_head is not Filter.on_response_head)
    return request, response
