"""The demo on other ports (``litemesh demo --listen/--admin/--upstream-ports``).

The example config names fixed ports (listener 8080, admin 9901, upstreams 9101-9103); on a shared
machine, or beside a second demo, any of them may be taken.  :func:`relocated_config` rewrites the
config text for the ports the demo actually got: the first listener and the admin address are
replaced, and every target on one of the demo upstreams' default ports (on a loopback host) points
at the port that instance really listens on.  The result is written to a file of its own, so a
reload (SIGHUP, ``POST /reload``) reads the relocated config, not the original.
"""
from __future__ import annotations

from typing import Any, Mapping

import yaml

from ..config.units import format_address, parse_address

__all__ = ["relocated_config", "parse_port_list"]

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def parse_port_list(text: str, count: int) -> list[int]:
    """``"9201,9202,0"`` → ``[9201, 9202, 0]``: exactly ``count`` ports, 0 meaning "any free port".

    Raises:
        ValueError: with what is wrong.
    """
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != count or not all(part.isdigit() and int(part) <= 65535 for part in parts):
        raise ValueError(f"expected {count} comma-separated ports (0 = any free port), got {text!r}")
    return [int(part) for part in parts]


def _moved_target(target: Any, moves: Mapping[int, int]) -> Any:
    address = target.get("address") if isinstance(target, dict) else target
    try:
        host, port = parse_address(address)
    except ValueError:
        return target  # not ours to judge: the loader reports it
    if host not in _LOOPBACK or port not in moves:
        return target
    moved = format_address(host, moves[port])
    return {**target, "address": moved} if isinstance(target, dict) else moved


def relocated_config(text: str, *, listen: str | None = None, admin: str | None = None,
                     upstream_moves: Mapping[int, int] | None = None) -> str:
    """``text`` (a gateway.yaml) with its first listener on ``listen``, its admin API on ``admin``
    and targets on a port in ``upstream_moves`` moved to the mapped port.  Comments are lost."""
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        return text  # the loader reports what is wrong with it
    if listen:
        listeners = data.get("listeners") or [{"name": "main"}]
        data["listeners"] = [{**listeners[0], "address": listen}, *listeners[1:]]
    if admin:
        data["admin"] = {**(data.get("admin") or {}), "address": admin}
    for service in data.get("services") or []:
        if upstream_moves and isinstance(service, dict) and isinstance(service.get("targets"), list):
            service["targets"] = [_moved_target(target, upstream_moves) for target in service["targets"]]
    return yaml.safe_dump(data, sort_keys=False)
