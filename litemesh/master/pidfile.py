"""The master's pid file: how ``litemesh reload`` and ``litemesh stop`` find a running gateway."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..config import GatewayConfig


def default_pid_file(config: GatewayConfig) -> str:
    """``server.pid_file``, else one per first listener port (several gateways on one host coexist)."""
    if config.server.pid_file:
        return config.server.pid_file
    return str(Path(tempfile.gettempdir()) / f"litemesh-{config.listeners[0].port}.pid")


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


class PidFileError(RuntimeError):
    pass


def write_pid_file(path: str) -> None:
    """Write our pid atomically; refuse if another live process holds the file."""
    other = read_pid(path)
    if other is not None and other != os.getpid() and alive(other):
        raise PidFileError(f"{path}: litemesh already running with pid {other}")
    tmp = f"{path}.{os.getpid()}.tmp"
    Path(tmp).write_text(f"{os.getpid()}\n")
    os.replace(tmp, path)


def remove_pid_file(path: str) -> None:
    if read_pid(path) == os.getpid():
        try:
            os.unlink(path)
        except OSError:
            pass
