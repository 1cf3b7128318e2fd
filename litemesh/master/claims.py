"""The listener addresses this gateway holds, so that it never joins another process's listeners.

Workers bind their listeners with SO_REUSEPORT, which would let them join a group that another
process (another LiteMesh, nginx with ``reuseport``) already serves.  Before any worker binds an
address, the master claims it with :func:`~litemesh.server.listener.claim_address`: the claim fails,
naming the listener and the address, when anything listens there already.  The claim's anchor
socket stays open for as long as the config has that listener, so a restarted worker re-binds an
address that is still ours, and a second gateway started on it refuses to start.

Port-0 listeners are resolved here as well: their anchor lets the kernel pick a free port once, for
every worker, and a reload keeps the port that a listener of the same name and host got before.
"""
from __future__ import annotations

import errno
import socket

import msgspec

from ..config import GatewayConfig
from ..config.units import format_address
from ..server.listener import ListenerError, claim_address

Address = tuple[str, int]


class AddressClaims:
    """Anchor sockets by listener address (host and port as the config writes them)."""

    def __init__(self) -> None:
        self._held: dict[Address, socket.socket] = {}

    def claim(self, config: GatewayConfig, running: GatewayConfig | None = None) -> GatewayConfig:
        """Claim every listener address of ``config`` not held yet; return ``config`` with port-0
        listeners resolved.  All or nothing: on failure the claims made by this call are given up.

        Raises:
            ListenerError: an address is taken (or cannot be bound); the message names it.
        """
        before = {(l.name, l.host): l.port for l in running.listeners} if running is not None else {}
        new: list[Address] = []
        listeners = []
        try:
            for listener in config.listeners:
                port = listener.port
                if port == 0:
                    port = before.get((listener.name, listener.host), 0)
                if (listener.host, port) not in self._held or port == 0:
                    try:
                        sock = claim_address(listener.host, port)
                    except OSError as error:
                        raise ListenerError(listener.name, listener.host, listener.port, error,
                                            self._hint(listener.host, port, error)) from None
                    port = sock.getsockname()[1]
                    self._held[(listener.host, port)] = sock
                    new.append((listener.host, port))
                if port != listener.port:
                    listener = msgspec.structs.replace(listener, port=port)
                listeners.append(listener)
        except BaseException:
            for address in new:
                self._held.pop(address).close()
            raise
        if not any(l.port == 0 for l in config.listeners):
            return config
        return msgspec.structs.replace(config, listeners=tuple(listeners))

    def _hint(self, host: str, port: int, error: OSError) -> str:
        if error.errno != errno.EADDRINUSE:
            return ""
        ours = [format_address(h, p) for h, p in self._held if p == port]
        if ours:
            # e.g. 127.0.0.1:8080 -> 0.0.0.0:8080: the kernel cannot tell our own socket from a stranger's
            return (f"this gateway listens on {', '.join(ours)}: drop that listener in one reload "
                    "and add this one in the next, or restart")
        return "another process listens there"

    def keep_only(self, config: GatewayConfig) -> None:
        """Give up the addresses ``config`` no longer listens on (after the workers closed them)."""
        wanted = {(l.host, l.port) for l in config.listeners}
        for address in [a for a in self._held if a not in wanted]:
            self._held.pop(address).close()

    def close(self) -> None:
        for sock in self._held.values():
            sock.close()
        self._held.clear()
