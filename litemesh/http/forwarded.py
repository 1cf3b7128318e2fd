"""Who the client is: trusted proxies, the real client address, and the identity headers we send.

A client can claim any address in ``X-Forwarded-For``, ``Forwarded`` or ``X-Real-IP``.  Those
claims are only believed when the connection comes from a proxy the operator listed in
``server.trust_forwarded`` (CIDRs); then the real client is the first address, reading the
``X-Forwarded-For`` chain from the right (the nearest hop first), that is not itself a trusted
proxy — the rule of nginx's ``real_ip_recursive`` and Envoy's ``xff_num_trusted_hops``.  Anything an
untrusted client sends in those headers is dropped and replaced by what the gateway saw.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_address(text: bytes) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP address from a header or a peer name (``[v6]`` brackets allowed), or None."""
    text = text.strip()
    if text.startswith(b"[") and text.endswith(b"]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None


class TrustedProxies:
    """The networks whose forwarding headers are believed; membership is memoized (peers repeat)."""

    __slots__ = ("networks", "_memo")

    def __init__(self, cidrs: Iterable[str]) -> None:
        self.networks: tuple[_Network, ...] = tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)
        self._memo: dict[bytes, bool] = {}

    def __contains__(self, address: bytes) -> bool:
        trusted = self._memo.get(address)
        if trusted is None:
            ip = parse_address(address)
            trusted = ip is not None and any(ip in network for network in self.networks)
            if len(self._memo) >= 4096:  # X-Forwarded-For entries are client-chosen: bound the memo
                self._memo.clear()
            self._memo[address] = trusted
        return trusted

    def client_address(self, chain: bytes) -> bytes:
        """The real client in an ``X-Forwarded-For`` chain that ends with the peer's address.

        Read from the right, trusted hops are skipped; the first untrusted entry is the client.
        An entry that is not an address ends the walk at the hop that reported it.
        """
        entries = [entry.strip() for entry in chain.split(b",")]
        client = entries[-1]
        for entry in reversed(entries):
            if parse_address(entry) is None:
                break
            client = entry
            if entry not in self:
                break
        return client


def forwarded_element(client: bytes, proto: bytes, host: bytes) -> bytes:
    """One RFC 7239 ``Forwarded`` element: ``for=...;proto=...;host=...``."""
    node = client
    if b":" in node:  # IPv6: bracketed and quoted (§6)
        node = b'"[' + node.strip(b"[]") + b']"'
    element = b"for=" + node + b";proto=" + proto
    if host:
        element += b';host="' + host.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return element
