"""Listening sockets: one per worker and address, with SO_REUSEPORT so the kernel spreads accepts.

SO_REUSEPORT has a price: any socket of the same user with the option set may bind the same address
and join the group, and the kernel then hands it a share of the connections.  A gateway started on
an address that another process (another LiteMesh, nginx with ``reuseport``) already listens on
would silently take part of that process's traffic.  :func:`claim_address` is how the master makes
sure an address is free, and keeps it ours, before any worker binds it.

Theory of operation (Linux bind rules).  Two sockets may share an address if both set
SO_REUSEPORT (and have the same owner), or if both set SO_REUSEADDR and the earlier one is not
listening.  So:

1. The *probe* binds with SO_REUSEADDR only.  It fails if any socket listens on the address,
   with or without SO_REUSEPORT, and succeeds over TIME_WAIT leftovers of an earlier server.
2. The *anchor* binds right after the probe closes, with SO_REUSEPORT only, and never listens: it
   receives no connections, our workers' SO_REUSEPORT listeners bind beside it, and any later
   probe (another LiteMesh starting on the same address) fails against it, even while our workers
   are still starting or are all being restarted.
3. When the address has TIME_WAIT connections of a server that did not use SO_REUSEPORT, the
   kernel refuses that anchor; the fallback anchor adds SO_REUSEADDR (as the workers' sockets do),
   which no longer stops a probe while none of our workers listens yet.  The window left open is
   that one, plus the instant between probe and anchor.
"""
from __future__ import annotations

import errno
import socket

from ..config.units import format_address


def listening_socket(host: str, port: int, backlog: int = 2048, *, reuse_port: bool = True,
                     listen: bool = True) -> socket.socket:
    """``listen=False`` only binds: the master holds a port-0 choice that way while workers bind it."""
    sock = _socket(host)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port and hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def claim_address(host: str, port: int) -> socket.socket:
    """Check that nothing listens on ``host:port`` and hold it for our workers (see the module doc).

    Returns the anchor socket: bound, not listening; closing it gives the address up.  Port 0
    lets the kernel pick a port that nothing uses (``getsockname()`` tells which).

    Raises:
        OSError: the address is taken (``EADDRINUSE``) or cannot be bound at all.
    """
    if port == 0:
        return _anchor(host, 0, reuse_addr=False)
    probe = _socket(host)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    finally:
        probe.close()
    try:
        return _anchor(host, port, reuse_addr=False)
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        return _anchor(host, port, reuse_addr=True)


def _anchor(host: str, port: int, *, reuse_addr: bool) -> socket.socket:
    sock = _socket(host)
    try:
        if reuse_addr:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _socket(host: str) -> socket.socket:
    return socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)


class ListenerError(OSError):
    """A listener that cannot listen: the message names the listener and its address."""

    def __init__(self, name: str, host: str, port: int, error: OSError, hint: str = "") -> None:
        reason = error.strerror or str(error)
        if hint:
            reason += f" ({hint})"
        super().__init__(error.errno, f"listener '{name}' cannot listen on {format_address(host, port)}: {reason}")
        self.name = name
        self.address = format_address(host, port)

    def __str__(self) -> str:
        return str(self.strerror)
