"""Listening sockets: one per worker and address, with SO_REUSEPORT so the kernel spreads accepts."""
from __future__ import annotations

import socket


def listening_socket(host: str, port: int, backlog: int = 2048, *, reuse_port: bool = True,
                     listen: bool = True) -> socket.socket:
    """``listen=False`` only binds: the master holds a port-0 choice that way while workers bind it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
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
