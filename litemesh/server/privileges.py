"""Privilege drop: start as root, bind the listeners, then serve as ``server.user``.

Theory of operation (nginx's model).  The master stays root for its whole life: it must be able to
spawn a worker again (which binds its own SO_REUSEPORT listeners, privileged ports included) and to
write and remove its pid file.  It never touches client traffic.  Each worker starts as root, binds
its listeners, and only then switches to the configured user before it serves anything (the
``Ready`` it sends the master comes after the switch): supplementary groups first (``setgroups`` to
the user's groups, as ``initgroups`` would), then the group, then the user; a process that changed
its uid can no longer change its groups.  A switch that fails, or that leaves a way back to root,
stops the worker: it never serves with more rights than it was told to have.

What this rules out, by design:

* A reload that adds a listener on a privileged port (below
  ``/proc/sys/net/ipv4/ip_unprivileged_port_start``): the workers can no longer bind it.  The
  reload answer says so (see :func:`privileged_port_hint`) and the running listeners stay; a restart adds it.
* Changing ``server.user``/``server.group`` takes a restart: the master hands every worker the
  identity it was started with, so workers restarted later match the others.
* Files a worker opens after the switch: only the log file, reopened on SIGUSR1.  The master
  (root) creates the log file and hands it to the user (``logs.setup_logging(owner=...)``) before
  it forwards SIGUSR1, so the workers can open it again; its directory must be searchable by the
  user.  In ``--single-process`` mode the process itself creates the new file after a rotation, so
  the log directory must be writable by the user (or rotate with ``copytruncate``).
"""
from __future__ import annotations

import grp
import importlib
import os
import pwd
from typing import NamedTuple

__all__ = ["PrivilegeError", "RunAs", "resolve", "check_can_switch", "drop_privileges", "privileged_port_hint",
           "unprivileged_port_start"]


#: Modules the interpreter imports on first use, not at start-up: the idna codec on the first host-name
#: lookup (an upstream target given by name).  Loaded before the switch, because the user may not be
#: able to read the interpreter's files (a pyenv under /root, say).
_IMPORTED_ON_FIRST_USE = ("encodings.idna",)


class PrivilegeError(RuntimeError):
    """The configured identity cannot be taken (unknown name, not root, or a failed switch)."""


class RunAs(NamedTuple):
    """A resolved ``server.user``/``server.group``."""

    user: str
    uid: int
    group: str
    gid: int
    groups: tuple[int, ...]  # supplementary groups: the user's, from the group database


def resolve(user: str, group: str = "") -> RunAs:
    """Look ``user`` (and ``group``, default: the user's primary group) up in the system databases.

    Raises:
        PrivilegeError: when either name is unknown.
    """
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise PrivilegeError(f"unknown user {user!r} (server.user)") from None
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise PrivilegeError(f"unknown group {group!r} (server.group)") from None
    else:
        gid = entry.pw_gid
        try:
            group = grp.getgrgid(gid).gr_name
        except KeyError:
            group = str(gid)  # a primary group without a name is still a group
    groups = tuple(sorted(set(os.getgrouplist(entry.pw_name, gid))))
    return RunAs(user, entry.pw_uid, group, gid, groups)


def _is(run_as: RunAs) -> bool:
    return os.geteuid() == run_as.uid and os.getegid() == run_as.gid


def check_can_switch(run_as: RunAs) -> None:
    """Refuse at start-up, before anything is bound, when the switch could not happen later: only
    root can change identity (a process already running as that user and group needs no switch).

    Raises:
        PrivilegeError: with what to do instead.
    """
    if os.geteuid() == 0 or _is(run_as):
        return
    try:
        me = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        me = "?"
    raise PrivilegeError(
        f"server.user is {run_as.user!r}, but litemesh runs as {me!r} (uid {os.geteuid()}), which cannot switch "
        f"users: start it as root (it binds its listeners, then its workers serve as {run_as.user!r}), "
        "or remove server.user")


def drop_privileges(run_as: RunAs) -> None:
    """Become ``run_as`` for good: setgroups, setgid, setuid, then check that no way back is left.

    Raises:
        PrivilegeError: when any step fails; the caller must not serve then.
    """
    if os.geteuid() != 0:
        if _is(run_as):
            return  # started as that user already (e.g. by systemd's User=)
        raise PrivilegeError(f"cannot switch to user {run_as.user!r}: not running as root")
    for module in _IMPORTED_ON_FIRST_USE:
        importlib.import_module(module)
    try:
        os.setgroups(list(run_as.groups))
        os.setgid(run_as.gid)  # sets real, effective and saved gid (we are root)
        os.setuid(run_as.uid)  # same for the uid; from here on, no way back
    except OSError as error:
        raise PrivilegeError(f"cannot switch to user {run_as.user!r}, group {run_as.group!r}: {error}") from None
    uids, gids = os.getresuid(), os.getresgid()
    if set(uids) != {run_as.uid} or set(gids) != {run_as.gid} or set(os.getgroups()) - set(run_as.groups):
        raise PrivilegeError(f"switch to user {run_as.user!r} incomplete: uids {uids}, gids {gids}, "
                             f"groups {os.getgroups()}")
    if run_as.uid != 0:
        try:
            os.setuid(0)
        except PermissionError:
            pass  # as it must be
        else:
            raise PrivilegeError(f"switch to user {run_as.user!r} can be undone: refusing to serve")


def unprivileged_port_start() -> int:
    """The lowest port a process without CAP_NET_BIND_SERVICE may bind (1024 unless the sysctl says)."""
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1024


def privileged_port_hint(port: int) -> str:
    """Why a worker that switched users may not bind ``port`` (a reload added it), and what to do;
    "" when the switch is not the reason."""
    limit = unprivileged_port_start()
    if os.geteuid() == 0 or port >= limit:
        return ""
    return (f"workers serve as uid {os.geteuid()} (server.user) and ports below {limit} need root; restart "
            "the gateway to add this listener")
