"""The master's pid file: how ``litemesh reload`` and ``litemesh stop`` find a running gateway.

Where it lives: ``--pid-file``, else ``server.pid_file``, else a default named from something a
reload cannot change: the config file's real path (hashed; several gateways on one host coexist)
or, for ``--listen`` quick mode, the listen address.  A reload that changes ``server.pid_file``
moves the file (the new one is written, then the old one removed), so ``litemesh stop -c FILE``
finds the master by reading the file's ``server.pid_file`` as it is now, or the default.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from ..config import GatewayConfig

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def default_pid_file(config: GatewayConfig, config_path: str | None = None) -> str:
    """``server.pid_file``, else ``$TMPDIR/litemesh-<file name>-<hash of its real path>.pid``, else
    (no config file) ``$TMPDIR/litemesh-<listen host>-<port>.pid``."""
    if config.server.pid_file:
        return config.server.pid_file
    return default_pid_file_for(config_path, config)


def default_pid_file_for(config_path: str | None, config: GatewayConfig | None = None) -> str:
    """The default pid file, ignoring ``server.pid_file``."""
    if config_path is not None:
        real = os.path.realpath(config_path)
        digest = hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:12]
        name = f"{_UNSAFE.sub('_', Path(real).stem)}-{digest}"
    else:
        assert config is not None, "a config file or a config"
        listener = config.listeners[0]
        name = _UNSAFE.sub("_", f"{listener.host}-{listener.port}")
    return str(Path(tempfile.gettempdir()) / f"litemesh-{name}.pid")


def read_pid(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def alive(pid: int) -> bool:
    """True while ``pid`` runs (an exited process its parent has not reaped yet counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def find_running(candidates: list[str]) -> tuple[int, str] | None:
    """The first of ``candidates`` naming a live process: ``(pid, path)``."""
    for path in candidates:
        pid = read_pid(path)
        if pid is not None and alive(pid):
            return pid, path
    return None


class PidFileError(RuntimeError):
    pass


def write_pid_file(path: str) -> None:
    """Write our pid atomically; refuse if another live process holds the file.

    Raises:
        PidFileError: another live process holds ``path``, or it cannot be written.
    """
    other = read_pid(path)
    if other is not None and other != os.getpid() and alive(other):
        raise PidFileError(f"{path}: litemesh already running with pid {other}")
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        Path(tmp).write_text(f"{os.getpid()}\n")
        os.replace(tmp, path)
    except OSError as error:
        raise PidFileError(f"cannot write pid file {path}: {error.strerror or error}") from None


def move_pid_file(old: str, new: str) -> None:
    """A reload changed the pid file's place: write the new one first, then remove the old one.

    Raises:
        PidFileError: the new one cannot be written (the old one stays).
    """
    write_pid_file(new)
    if os.path.realpath(old) != os.path.realpath(new):
        remove_pid_file(old)


def remove_pid_file(path: str) -> None:
    if read_pid(path) == os.getpid():
        try:
            os.unlink(path)
        except OSError:
            pass
