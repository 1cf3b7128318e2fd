"""Host name resolution for one upstream target: a small cache, one per pool (so per worker).

Theory of operation
-------------------
Handing a host name to ``loop.create_connection`` runs getaddrinfo for every new upstream
connection: a resolver round trip each time, and for a name that does not resolve, one error per
request and nothing that tells the operator.  A :class:`HostResolver` resolves the name with
``loop.getaddrinfo`` instead and keeps the answer -- the addresses, or the failure -- for
``interval`` seconds (``services[].resolve_interval``).  ``resolve()`` then behaves like this:

* answer younger than the interval: returned at once, no lookup;
* older, and it was a list of addresses: still returned at once, while one background lookup
  refreshes it -- a name that resolves never makes a request wait for a re-resolution;
* older, and there is nothing usable (first use, or the last lookup failed): the caller waits for
  the lookup.

Every caller that needs a lookup while one is running shares it (single flight; the shared task is
shielded, so a caller's connect timeout cannot cancel it for the others).  A failed lookup logs one
warning and is kept like an answer: for the rest of the interval requests get 502
``upstream_unresolvable`` at once, without a lookup and without a log line each.  The next lookup
after the interval logs again if it fails, and a name that resolves after a failure is logged once
at info level.  The connecting side tries the addresses in the resolver's order (RFC 6724, as
getaddrinfo sorts them) until one accepts.

Why 30 s by default: getaddrinfo does not tell record TTLs, so the interval is a fixed choice.
Half a minute follows a changed record (fail-over, blue/green switch, a rescheduled container)
about as fast as the usual service-discovery TTLs of 5 to 60 s allow, while a busy worker does one
lookup per name every 30 s instead of one per connection; an unresolvable name costs one warning
per worker per 30 s.

IP literals never get a resolver: the pool connects to them directly.
"""
from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any, Awaitable, Callable

from ..errors import UpstreamError

__all__ = ["HostResolver", "DEFAULT_RESOLVE_INTERVAL", "AddrInfo"]

log = logging.getLogger("litemesh.upstream")

#: seconds an answer is used before the name is resolved again (see the module docstring)
DEFAULT_RESOLVE_INTERVAL = 30.0

#: one getaddrinfo result: (family, type, proto, canonname, sockaddr)
AddrInfo = tuple[int, int, int, str, tuple[Any, ...]]
Lookup = Callable[..., Awaitable[list[AddrInfo]]]


class HostResolver:
    __slots__ = ("loop", "host", "port", "service", "interval", "addresses", "error", "expires", "lookups",
                 "_lookup", "_task")

    def __init__(self, loop: asyncio.AbstractEventLoop, host: str, port: int, *,
                 interval: float = DEFAULT_RESOLVE_INTERVAL, service: str = "",
                 lookup: Lookup | None = None) -> None:
        """``lookup`` defaults to ``loop.getaddrinfo``; tests pass a wrapper around it."""
        self.loop = loop
        self.host = host
        self.port = port
        self.service = service  # for the log lines
        self.interval = interval
        self.addresses: list[AddrInfo] = []  # the last answer; empty while none or after a failure
        self.error: UpstreamError | None = None  # the last lookup's failure, answered until it expires
        self.expires = float("-inf")  # loop time when the answer is due for a refresh
        self.lookups = 0  # lookups started (metrics and tests)
        self._lookup = lookup if lookup is not None else loop.getaddrinfo
        self._task: asyncio.Task[None] | None = None

    async def resolve(self) -> list[AddrInfo]:
        """The addresses to try, in order.

        Raises:
            UpstreamError: 502 ``upstream_unresolvable`` while the last lookup failed (already
                logged here: ``logged`` is set so the request path does not log it again).
        """
        if self.loop.time() >= self.expires:
            task = self._task if self._task is not None else self._start()
            if not self.addresses:
                await asyncio.shield(task)  # nothing to use meanwhile
        if self.addresses:
            return self.addresses
        assert self.error is not None
        raise self.error

    def close(self) -> None:
        """Stop a lookup in flight (the pool is being closed)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def _start(self) -> "asyncio.Task[None]":
        self.lookups += 1
        task = self._task = self.loop.create_task(self._run())
        return task

    async def _run(self) -> None:
        try:
            infos = await self._lookup(self.host, self.port, type=socket.SOCK_STREAM)
        except (OSError, ValueError) as exc:  # socket.gaierror; UnicodeError for names IDNA refuses
            self._failed(exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc))
        else:
            unique = list({info[4]: info for info in infos}.values())  # one entry per address, in order
            if unique:
                self._resolved(unique)
            else:
                self._failed("no addresses")
        finally:
            self._task = None
            self.expires = self.loop.time() + self.interval

    def _resolved(self, infos: list[AddrInfo]) -> None:
        if self.error is not None:
            log.info("service %r: upstream host %r resolves again: %s", self.service, self.host,
                     ", ".join(str(info[4][0]) for info in infos))
        self.addresses = infos
        self.error = None

    def _failed(self, reason: str) -> None:
        self.addresses = []
        self.error = UpstreamError(502, "upstream_unresolvable", f"upstream host {self.host!r} does not resolve",
                                   logged=True)
        log.warning("service %r: upstream host %r does not resolve (%s); its requests are answered 502 "
                    "until a lookup succeeds (next try in %g s)", self.service, self.host, reason, self.interval)
