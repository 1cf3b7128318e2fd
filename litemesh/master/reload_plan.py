"""What a reload applies, field by field.

A reload validates the whole file, then every worker compiles the data plane (listeners, routes,
services, limits, timeouts, the headers the proxy adds) into its next snapshot: those fields are
*live*.  A few settings shape the processes themselves.  The master applies those it can (*master*:
the worker count, CPU pinning, the pid file, the admin token); the others only take effect at the
next start (*restart*: the log file, the admin listener's address, which is answering this very
reload).  Nothing is silently dropped: each restart-only change is named, with its running and file
values, in the reload answer, in ``/status`` ("needs_restart") and in a warning log line, and the
running value stays in force: the master serves the file's config with those fields kept at their
running values, so what ``/status`` shows is what runs.  A field fixed by a command-line option
(``--workers``, ``--pid-file``, ...) keeps the option's value; the answer names the option.

:data:`RULES` lists every field of :class:`~litemesh.config.GatewayConfig`, whole sections where all
their fields behave alike.  A field missing from it counts as *restart* (a new process-level setting
is reported, never ignored); a unit test checks that every field is listed.
"""
from __future__ import annotations

import functools
import typing
from typing import Any, Mapping, NamedTuple

import msgspec

from ..config import GatewayConfig
from ..config.model import UNIT_KEY

LIVE = "live"
MASTER = "master"
RESTART = "restart"

RULES: dict[str, str] = {
    # workers open the listeners a reload adds (the master claims their addresses first), close
    # those it drops (their connections stay) and re-listen() for a new backlog
    "listeners": LIVE,
    "services": LIVE,
    "routes": LIVE,
    "limits": LIVE,  # new connections and requests
    "timeouts": LIVE,  # including the drain grace period of the next stop
    "server.workers": MASTER,  # workers spawned or retired to the new count
    "server.via": LIVE,
    "server.request_id_header": LIVE,
    "server.trust_forwarded": LIVE,
    "server.emit_forwarded": LIVE,
    "server.merge_slashes": LIVE,
    "server.allow_trace": LIVE,
    "server.server_header": LIVE,
    "server.cpu_affinity": MASTER,  # running workers re-pinned (or unpinned), restarts follow
    "server.pid_file": MASTER,  # the pid file moves: new one written, old one removed
    "server.log_file": RESTART,  # every process opened it at start
    # workers switch users right after binding, and the master hands every worker it spawns the
    # identity it started with (privileges.py): a new user takes a restart
    "server.user": RESTART,
    "server.group": RESTART,
    "admin.enabled": RESTART,
    "admin.address": RESTART,  # the listener that answers this very reload
    "admin.token": MASTER,
}

_SECRET_FIELDS = frozenset({"admin.token"})


class FieldChange(NamedTuple):
    """A field whose file value differs from the running one."""

    field: str
    running: Any
    file: Any

    def as_json(self, **extra: Any) -> dict[str, Any]:
        hide = self.field in _SECRET_FIELDS
        return {"field": self.field, "running": _shown(self.running, hide), "file": _shown(self.file, hide), **extra}


def _shown(value: Any, hide: bool) -> Any:
    if hide and value is not None:
        return "<hidden>"
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)


class ReloadPlan:
    """What a reload does with the fields that are not live."""

    __slots__ = ("config", "master", "restart", "overridden")

    def __init__(self, config: GatewayConfig) -> None:
        #: what to run: the file's config, restart-only and overridden fields at their running values
        self.config = config
        #: changed fields the master applies itself
        self.master: list[FieldChange] = []
        #: fields whose file value only a restart would apply (the running value stays)
        self.restart: list[FieldChange] = []
        #: fields fixed by a command-line option: (change with the option's value as running, option)
        self.overridden: list[tuple[FieldChange, str]] = []

    def changed(self, field: str) -> FieldChange | None:
        return next((change for change in self.master if change.field == field), None)


def rule(field: str) -> str:
    return RULES.get(field) or RULES.get(field.split(".", 1)[0]) or RESTART


def plan_reload(running: GatewayConfig, file: GatewayConfig,
                overrides: Mapping[str, tuple[str, Any]] | None = None) -> ReloadPlan:
    """Compare the running config with the file's.

    Args:
        running: the config the gateway serves (its restart-only fields hold the values it runs with).
        file: the validated config just read from the file.
        overrides: field path -> (command-line option, the value in force) for fields the command
            line fixed; those keep their running value whatever the file says.
    """
    overrides = overrides or {}
    plan = ReloadPlan(file)
    keep: list[str] = []
    for field, running_value, file_value in _compare(running, file):
        if running_value == file_value:
            continue
        change = FieldChange(field, running_value, file_value)
        if field in overrides:
            option, value = overrides[field]
            plan.overridden.append((change._replace(running=value), option))
            keep.append(field)
        elif rule(field) == MASTER:
            plan.master.append(change)
        else:
            plan.restart.append(change)
            keep.append(field)
    if keep:
        plan.config = _keep_running(file, running, keep)
    return plan


def _compare(running: GatewayConfig, file: GatewayConfig) -> typing.Iterator[tuple[str, Any, Any]]:
    """(field path, running value, file value) for every field that is not live (live sections are
    not compared at all: a 10,000-route table costs nothing here)."""
    for name in GatewayConfig.__struct_fields__:
        if RULES.get(name) == LIVE:
            continue
        run_value, file_value = getattr(running, name), getattr(file, name)
        if name in RULES or not isinstance(run_value, msgspec.Struct):
            yield name, run_value, file_value
            continue
        for sub in type(run_value).__struct_fields__:
            path = f"{name}.{sub}"
            if sub not in _derived_fields(type(run_value)) and rule(path) != LIVE:
                yield path, getattr(run_value, sub), getattr(file_value, sub)


@functools.lru_cache(maxsize=None)
def _derived_fields(cls: type[msgspec.Struct]) -> frozenset[str]:
    """Fields the loader fills from ``address`` (host, port): they follow it, never reported alone."""
    derived = set()
    for name, hint in typing.get_type_hints(cls, include_extras=True).items():
        for meta in getattr(hint, "__metadata__", ()):
            if isinstance(meta, msgspec.Meta) and (meta.extra or {}).get(UNIT_KEY) == "derived":
                derived.add(name)
    return frozenset(derived)


def _keep_running(file: GatewayConfig, running: GatewayConfig, fields: list[str]) -> GatewayConfig:
    by_section: dict[str, list[str]] = {}
    top: dict[str, Any] = {}
    for field in fields:
        section, _, sub = field.partition(".")
        if sub:
            by_section.setdefault(section, []).append(sub)
        else:
            top[section] = getattr(running, section)
    for section, subs in by_section.items():
        run_spec = getattr(running, section)
        if "address" in subs:
            subs = subs + sorted(_derived_fields(type(run_spec)))
        top[section] = msgspec.structs.replace(getattr(file, section),
                                               **{sub: getattr(run_spec, sub) for sub in subs})
    return msgspec.structs.replace(file, **top)
