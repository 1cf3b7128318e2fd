"""Do the target host names of a loaded config resolve?

Not part of validation: a name that does not resolve today may resolve tomorrow (a record not yet
published, a container not yet started), and the loader must stay free of I/O because the master
loads every reload.  So this is a separate step with warnings, not errors: ``litemesh check``
prints them (exit code 0) and ``litemesh run`` logs them at start, both as
``file:line:col: services[i].targets[j].address: warning: ...`` like configuration errors.
At run time each worker resolves on its own (:mod:`litemesh.proxy.resolve`).

Lookups run in a small thread pool, one per distinct name, so a config with many names costs
about one resolver round trip, not one per name.
"""
from __future__ import annotations

import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

from .loader import ConfigIssue, locate_issues
from .model import GatewayConfig
from .units import is_ip_literal

__all__ = ["unresolvable_targets", "target_warnings", "log_target_warnings"]

log = logging.getLogger("litemesh.config")

#: most lookups run at once
MAX_PARALLEL_LOOKUPS = 8


def _lookup_failure(host: str) -> str | None:
    """None if ``host`` resolves, else the resolver's reason."""
    try:
        if socket.getaddrinfo(host, None, type=socket.SOCK_STREAM):
            return None
        return "no addresses"
    except (OSError, ValueError) as exc:  # socket.gaierror; UnicodeError for names IDNA refuses
        return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def unresolvable_targets(config: GatewayConfig) -> list[tuple[tuple[str | int, ...], str]]:
    """``(path, message)`` for every target whose host name does not resolve now (IP literals are
    never looked up); paths point at ``services[i].targets[j].address``."""
    uses: dict[str, list[tuple[str | int, ...]]] = {}
    for i, service in enumerate(config.services):
        for j, target in enumerate(service.targets):
            if not is_ip_literal(target.host):
                uses.setdefault(target.host.lower(), []).append(("services", i, "targets", j, "address"))
    if not uses:
        return []
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_LOOKUPS, len(uses))) as pool:
        failures = dict(zip(uses, pool.map(_lookup_failure, uses)))
    found = []
    for host, paths in uses.items():
        reason = failures[host]
        if reason is not None:
            message = (f"warning: host {host!r} does not resolve ({reason}); its requests will be answered 502 "
                       "until it does")
            found.extend((path, message) for path in paths)
    return found


def target_warnings(config: GatewayConfig, text: str, filename: str) -> list[ConfigIssue]:
    """Warnings for unresolvable target hosts, positioned in the config ``text`` it was loaded from."""
    found = unresolvable_targets(config)
    return locate_issues(text, filename, found) if found else []


def log_target_warnings(config: GatewayConfig, text: str, filename: str) -> threading.Thread:
    """Log :func:`target_warnings` from a background thread, so a slow resolver never delays the
    start; returns the (daemon) thread."""
    def run() -> None:
        for warning in target_warnings(config, text, filename):
            log.warning("%s", warning)

    thread = threading.Thread(target=run, name="litemesh-target-check", daemon=True)
    thread.start()
    return thread
